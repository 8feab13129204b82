"""Parity with the Caffe oracle: every single-layer case, run as a CaffeNet.

Bound: max |ours - caffe| <= 1e-5 * max |caffe blob| per stored blob, float32
on CPU. A single Caffe layer differs from PyTorch at most by summation order
(im2col + BLAS vs PyTorch's kernels), which stays below 1e-6 relative for
these sizes; 1e-5 leaves an order of magnitude of margin while any wrong rule
(a divisor, a rounding, an index) shows as 1e-2 or more.
"""
import numpy as np
import pytest
import torch

import oracle
from psp_torch import CaffeNet

LAYER_BOUND = 1e-5      # relative to the blob's max |value|; see the module docstring
CASES = oracle.cases("layers")


def relative_error(ours: np.ndarray, expected: np.ndarray) -> float:
    scale = float(np.abs(expected).max())
    return float(np.abs(ours - expected).max()) / (scale if scale > 0 else 1.0)


def run_case(case, weights):
    cnet = CaffeNet.from_files(case.prototxt, weights)
    blobs = case.blobs()
    inputs = {name: torch.from_numpy(blobs[name]) for name in cnet.input_shapes}
    with torch.no_grad():
        out = cnet(**inputs, outputs="all")
    return cnet, blobs, out


def check_blobs(case, blobs, out):
    errors = {}
    for key, expected in blobs.items():
        name = key.split("@")[0]
        assert name in out, f"{case.name}: stored blob {name!r} is not a blob of our net"
        ours = oracle.compare(out[name].numpy(), key, expected)
        assert ours.shape == expected.shape, f"{case.name}: {key} {ours.shape} vs {expected.shape}"
        errors[key] = relative_error(ours, expected)
    bad = {k: e for k, e in errors.items() if not e <= LAYER_BOUND}
    assert not bad, f"{case.name}: relative errors above {LAYER_BOUND}: {bad} (all: {errors})"


def test_there_are_layer_cases():
    assert len(CASES) >= 26


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_layer_case_caffemodel(case):
    cnet, blobs, out = run_case(case, case.caffemodel)
    learnable = [l["name"] for l in case.meta["layers"] if l["param_shapes"]]
    assert sorted(cnet.weight_report.loaded + cnet.weight_report.missing) == sorted(
        s.name for s in cnet.steps)
    assert not cnet.weight_report.missing, "every layer is in the caffemodel"
    for name in learnable:
        shapes = [list(s) for s in cnet.layers[cnet.module_keys[name]].blob_shapes()]
        meta_shapes = next(l["param_shapes"] for l in case.meta["layers"] if l["name"] == name)
        assert shapes == [list(s) for s in meta_shapes], name
    check_blobs(case, blobs, out)


H5_CASES = [c for c in CASES if c.h5 is not None]


@pytest.mark.parametrize("case", H5_CASES, ids=[c.name for c in H5_CASES])
def test_layer_case_hdf5(case):
    """The same weights read from Caffe's HDF5 file give the same blobs."""
    _, blobs, out = run_case(case, case.h5)
    check_blobs(case, blobs, out)


def test_bound_detects_a_wrong_rule():
    """The bound is tight enough to catch a plausible mistake (padding counted in MAX)."""
    case = next(c for c in CASES if c.name == "layers/pool_max_ceil")
    blobs = case.blobs()
    x = torch.from_numpy(blobs["a"])                    # 1x2x236x236, mostly negative
    wrong = torch.nn.functional.max_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1)), 3, 2,
                                           ceil_mode=True).numpy()
    key = next(k for k in blobs if k.startswith("pool_a"))
    ours = oracle.compare(wrong, key, blobs[key])
    assert ours.shape == blobs[key].shape
    assert relative_error(ours, blobs[key]) > 100 * LAYER_BOUND
