"""Multiply-accumulate count of a model's forward, from the operators it runs.

A MAC is one multiply and one add of a convolution, deconvolution or matrix
product (``torch.utils.flop_counter`` counts 2 FLOPs per MAC for those ops and
nothing for the rest: BN, ReLU, pooling, Interp, softmax are not MACs). This is
how the reference figure of the Caffe release is counted: PSPNet50 at 473x473 is
161.5 GMAC. Bias additions are not counted.

The forward runs on a copy of the model on the ``meta`` device: shapes only, no
arithmetic, no memory for activations, so a 713x713 PSPNet101 counts in seconds.
"""
from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode


def _deepcopy_to_meta(model):
    """A copy of `model` whose parameters and buffers are meta tensors (no data copied)."""
    memo = {}
    for t in list(model.parameters()) + list(model.buffers()):
        memo[id(t)] = (torch.nn.Parameter(torch.empty_like(t, device="meta"), t.requires_grad)
                       if isinstance(t, torch.nn.Parameter) else torch.empty_like(t, device="meta"))
    return copy.deepcopy(model, memo)


def count_macs(model: torch.nn.Module, shape=(1, 3, 473, 473), *, by_module: bool = False,
               call=None):
    """MACs of one forward of `model` on an input of `shape` (N, C, H, W).

    `call(model, x)` runs the forward (default ``model(x)``; a CaffeNet wants
    ``model(data=x)``). With ``by_module`` also returns {top-level module name: MACs}.
    """
    meta = _deepcopy_to_meta(model).eval()
    x = torch.empty(*shape, device="meta")
    counter = FlopCounterMode(display=False, depth=1)
    with torch.no_grad(), counter:
        (call or (lambda m, t: m(t)))(meta, x)
    total = counter.get_total_flops() // 2
    if not by_module:
        return total
    per = {}
    for name, ops in counter.get_flop_counts().items():
        if name == "Global" or name.count(".") != 1:
            continue
        per[name.split(".", 1)[1]] = sum(ops.values()) // 2
    return total, per


def gmacs(model: torch.nn.Module, size: int | tuple = 473, batch: int = 1, **kw) -> float:
    """GMAC per forward of `batch` images of `size` (side or (H, W))."""
    h, w = (size, size) if isinstance(size, int) else size
    return count_macs(model, (batch, 3, h, w), **kw) / 1e9
