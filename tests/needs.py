"""Skip markers for the features that need a newer torch than the project's floor: the
reason is psp_torch.compat's own line (``FEATURE needs torch >= X (installed Y)``)."""
import pytest

from psp_torch import compat


def _torch_for(feature: str):
    problem = compat.too_old(feature)
    return pytest.mark.skipif(problem is not None, reason=problem or "")


EXPORT = _torch_for(compat.EXPORT)      # torch.export, N/H/W dynamic (psp_torch.tracing)
ONNX = _torch_for(compat.ONNX)          # the ONNX exporter (converter/onnx_export.py)
COMPILE = _torch_for(compat.COMPILE)    # torch.compile of the model
