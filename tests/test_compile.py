"""torch.export and torch.compile (inductor, CPU) of the faithful PSPNet.forward on a slim net.

The layers compute Caffe's shape arithmetic on symbolic sizes, so the real forward traces:
one exported program (N, H, W dynamic; `psp_torch.tracing.export_program`) gives the eager
output bit for bit at both sizes of tests/variants.py, and the compiled forward stays within
float32 rounding of eager (its distance to the float64 forward measured against eager's own).
Nothing here is timed.
"""
from __future__ import annotations

import copy

import pytest
import torch

import needs
import variants
from psp_torch.tracing import export_program

# compiled's distance to the exact (float64) result / eager float32's: measured 2.5-2.6 (7.5e-7
# and 7.2e-7 against 3.0e-7 and 2.7e-7 of the output scale). Inductor runs the convolutions as
# prepacked oneDNN kernels (another summation order) and fuses BN + ReLU into other float32
# expressions: more roundings of the same size, no other arithmetic. A Caffe detail lost in
# tracing (an Interp source row, a pooling window) is ~1e-2 (issue 16), far above COMPILED_BOUND.
FLOOR_RATIO = 4.0
COMPILED_BOUND = 1e-5


def _inputs():
    g = torch.Generator().manual_seed(2)
    return [torch.randn(b, 3, h, w, generator=g) * 50
            for b, (h, w) in zip((2, 1), variants.SIZES)]


@needs.EXPORT
@pytest.mark.parametrize("name", ["release", "max_no_reduction_aux"])
def test_export_with_dynamic_sizes_is_the_eager_forward(name):
    """One program traced at the crop size runs at both sizes (and batch 2 and 1) and gives
    the eager output bit for bit: the same aten operators, the Caffe arithmetic computed
    from the symbolic sizes (a program that froze them would give other shapes)."""
    model = variants.calibrated_model(name)
    program = export_program(model)
    for x in _inputs():
        with torch.no_grad():
            ours, ref = program.module()(x), model(x)
        assert ours.shape == ref.shape == (x.shape[0], model.config.num_classes, *x.shape[2:])
        assert torch.equal(ours, ref)


def test_export_records_blobs_only_in_eager():
    """forward_blobs is the forward with a blob dict: the exported program has no dict."""
    model = variants.calibrated_model()
    x = _inputs()[1]
    with torch.no_grad():
        blobs = model.forward_blobs(x)
        assert torch.equal(blobs["conv6_interp"], model(x))
    assert {"conv1_1_3x3_s2", "pool1_3x3_s2", "conv5_3_pool6_interp", "conv5_3_concat",
            "conv5_4", "conv6"} <= set(blobs)


@needs.COMPILE
def test_compiled_forward_is_eager_within_float32_rounding():
    """torch.compile (inductor, CPU) at both sizes (a recompile for the second): no farther
    from the float64 forward than FLOOR_RATIO x the eager float32 forward is, and within
    COMPILED_BOUND of the output scale (float32 rounding; see FLOOR_RATIO)."""
    model = variants.calibrated_model()
    exact = copy.deepcopy(model).double()
    compiled = torch.compile(model)
    errs = []
    for x in _inputs():
        with torch.no_grad():
            ours, eager, ref = compiled(x), model(x), exact(x.double())
        assert ours.shape == eager.shape
        scale = ref.abs().max()
        err = float((ours.double() - ref).abs().max() / scale)
        floor = float((eager.double() - ref).abs().max() / scale)
        dev = float((ours - eager).abs().max() / scale)
        print(f"compiled {tuple(x.shape)}: |compiled-fp64| {err:.3g}, |eager-fp64| "
              f"{floor:.3g}, |compiled-eager| {dev:.3g}")
        errs.append((err, floor))
    assert all(e <= FLOOR_RATIO * f and e <= COMPILED_BOUND for e, f in errs), errs
