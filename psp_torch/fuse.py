"""BN folded into the preceding convolution: an explicit, inference-only mode.

Caffe's frozen BN after a convolution is an affine map per output channel::

    y = slope * (conv(x) + b - mean) / sqrt(var + eps) + bias

so it folds into the convolution: ``W' = W * s`` and ``b' = bias + (b - mean) * s``
with ``s = slope / sqrt(var + eps)`` per output channel. The folded factors are
computed in float64 and rounded once to float32; the result is not bit-identical
to the faithful fp32 forward (one rounding instead of two per value, different
summation of the bias), so `fuse` is never applied implicitly: the faithful
model stays the default and bench/bench_forward.py prints the deviation.

Only `torch.nn.Conv2d` followed by `torch.nn.BatchNorm2d` as the model wires
them are folded: attribute pairs ``conv``/``bn`` and ``convK``/``bnK`` of one
module, and consecutive (Conv2d, BatchNorm2d) inside an ``nn.Sequential``. That
covers every BN of `psp_torch.PSPNet` (stem, bottlenecks, projections, pyramid,
head, aux head).
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new Conv2d computing ``bn(conv(x))`` with BN's running statistics."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm2d without running statistics")
    w = conv.weight.detach().double()
    mean, var = bn.running_mean.double(), bn.running_var.double()
    slope = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(mean)
    shift = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(mean)
    scale = slope / torch.sqrt(var + bn.eps)
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros_like(mean)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, conv.dilation, conv.groups, bias=True,
                      padding_mode=conv.padding_mode, device=conv.weight.device,
                      dtype=conv.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_((w * scale.reshape(-1, 1, 1, 1)).to(conv.weight.dtype))
        fused.bias.copy_((shift + (b - mean) * scale).to(conv.weight.dtype))
    return fused


def _pairs(module: nn.Module):
    """(conv attribute, bn attribute) pairs of one module's direct children."""
    children = dict(module.named_children())
    if isinstance(module, nn.Sequential):
        names = list(children)
        for a, b in zip(names, names[1:]):
            if isinstance(children[a], nn.Conv2d) and isinstance(children[b], nn.BatchNorm2d):
                yield a, b
        return
    for name, child in children.items():
        if not isinstance(child, nn.Conv2d) or not name.startswith("conv"):
            continue
        bn_name = "bn" + name[len("conv"):]
        if isinstance(children.get(bn_name), nn.BatchNorm2d):
            yield name, bn_name


def fuse(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode with every recognised conv+BN pair folded.

    The BN modules become `nn.Identity`; the original model is untouched. The copy
    is for inference only (`model.train()` would no longer learn BN statistics);
    its ``meta`` (if any) gets ``"fused": True``.
    """
    fused = copy.deepcopy(model).eval()
    count = 0
    for module in list(fused.modules()):
        for conv_name, bn_name in list(_pairs(module)):
            setattr(module, conv_name, fold_bn(getattr(module, conv_name), getattr(module, bn_name)))
            setattr(module, bn_name, nn.Identity())
            count += 1
    left = [n for n, m in fused.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise ValueError(f"fuse: BN layers not preceded by a convolution it can fold: {left[:5]}")
    fused.fused_pairs = count
    if isinstance(getattr(fused, "meta", None), dict):
        fused.meta = {**fused.meta, "fused": True}
    return fused
