"""The faithful PSPNet forward as one traced program for every batch and input size.

`export_program` runs ``torch.export`` on the model's own ``forward`` (eval mode)
with the batch, height and width dynamic. The Caffe shape arithmetic (ceil
pooling, AVE divisors, Interp) is computed from the symbolic sizes inside the
layers (`psp_torch.layers.sizes`), so nothing is frozen at the example's size.

Sizes are reasoned about size-obliviously (torch's ``backed_size_oblivious``):
otherwise torch's contiguity checks would specialise every map that is 1 pixel
at the example size (the bin-1 pyramid map at the crop size) to stay 1, and the
program would refuse larger inputs. No computation of the layers depends on a
size being 1 (their broadcasts are between equal sizes or literal 1s), so the
one program is right at every size; tests/test_compile.py checks it against
the eager forward at two sizes.
"""
from __future__ import annotations

import torch

from . import compat

try:                                    # torch >= 2.2; tracing needs more (compat.EXPORT)
    import torch.fx.experimental._config as fx_config
except ImportError:
    fx_config = None

# (N, 3, H, W): batch, height and width dynamic
DYNAMIC_AXES = (0, 2, 3)


def example_input(model, side: int | None = None) -> torch.Tensor:
    """A (2, 3, side, side) zero input in the model's dtype (side: the config's crop)."""
    side = side or model.config.crop_size
    dtype = next(model.parameters()).dtype
    return torch.zeros(2, 3, side, side, dtype=dtype)


def export_program(model, example: torch.Tensor | None = None):
    """``torch.export`` of ``model.forward(example)`` in eval mode (the model's mode is
    restored), with N, H and W of the (N, C, H, W) input dynamic; `example` defaults to
    `example_input` (a PSPNet's crop size). Raises `compat.TorchTooOld` (one line) on a
    torch without it."""
    compat.require(compat.EXPORT)
    example = example_input(model) if example is None else example
    training = model.training
    model.eval()
    try:
        with torch.no_grad(), fx_config.patch(backed_size_oblivious=True):
            dynamic = {axis: torch.export.Dim.DYNAMIC for axis in DYNAMIC_AXES}
            return torch.export.export(model, (example,), dynamic_shapes=(dynamic,))
    finally:
        model.train(training)
