"""Upstream Caffe's normalisation trio: BatchNorm, Scale and Bias.

BatchNorm (TEST phase, ``use_global_stats`` defaulting to true there): blobs
``mean * s``, ``var * s`` (each (C,)) and the scale factor ``s`` ((1,));
``f = 0 if s == 0 else 1 / s``; ``y = (x - f*blob0[c]) / sqrt(f*blob1[c] + eps)``,
eps from ``batch_norm_param.eps`` (default 1e-5). With ``use_global_stats:
false`` Caffe normalises with the batch's own mean and (biased) variance over
all axes but the channel axis.

Scale: ``y = x * scale`` where ``scale`` (a blob, or the second bottom) covers
the axes ``axis .. axis + num_axes`` of x (num_axes -1: to the end) and
broadcasts over the others; ``bias_term`` adds a bias blob of the same shape.
Bias: ``y = x + bias`` with the same axis rules.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .base import (CaffeLayer, canonical_axis, channel_count, has,
                   same_shape_checking_channels, sub_param)
from .bn import channel_view


class BatchNorm(CaffeLayer):
    BLOBS = ("mean", "var", "scale_factor")

    def __init__(self, channels: int, eps: float = 1e-5, use_global_stats: bool = True):
        super().__init__()
        self.channels, self.eps = channels, float(np.float32(eps))
        self.use_global_stats = use_global_stats
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))
        self.register_buffer("scale_factor", torch.ones(1))

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "batch_norm_param")
        use_global = p.use_global_stats if has(p, "use_global_stats") else True   # TEST phase
        return cls(channel_count(bottom_shapes[0], "BatchNorm"), p.eps, use_global)

    def output_shapes(self, bottom_shapes):
        return same_shape_checking_channels(bottom_shapes, self.channels)

    def forward(self, x):
        n = x.dim()
        if self.use_global_stats:
            s = self.scale_factor[0]
            f = torch.where(s == 0, torch.zeros_like(s), 1.0 / s)
            mean, var = self.mean * f, self.var * f
        else:
            axes = [0] + list(range(2, n))
            mean = x.mean(dim=axes)
            var = ((x - channel_view(mean, n)) ** 2).mean(dim=axes)
        return (x - channel_view(mean, n)) / channel_view(torch.sqrt(var + self.eps), n)

    def extra_repr(self):
        return f"{self.channels}, eps={self.eps:g}, use_global_stats={self.use_global_stats}"


def _param_shape(x_shape, axis, num_axes):
    axis = canonical_axis(axis, len(x_shape))
    if num_axes < -1:
        raise ValueError(f"num_axes must be >= -1, got {num_axes}")
    end = len(x_shape) if num_axes == -1 else axis + num_axes
    if end > len(x_shape):
        raise ValueError(f"axis {axis} + num_axes {num_axes} exceed the blob's "
                         f"{len(x_shape)} axes")
    return axis, tuple(x_shape[axis:end])


def _broadcast(t: torch.Tensor, axis: int, ndim: int) -> torch.Tensor:
    """View a parameter covering axes axis.. so that it broadcasts over an ndim blob."""
    return t.reshape((1,) * axis + tuple(t.shape) + (1,) * (ndim - axis - t.dim()))


def _check_fits(x_shape, axis, p_shape, what):
    if tuple(x_shape[axis:axis + len(p_shape)]) != tuple(p_shape):
        raise ValueError(f"{what} of shape {tuple(p_shape)} does not fit axes {axis}.. of a "
                         f"blob of shape {tuple(x_shape)}")


class _AxisOp(CaffeLayer):
    """Shared by Scale and Bias: a parameter (blob or second bottom) over some axes."""

    def __init__(self, axis, num_axes, param_shape, from_bottom):
        super().__init__()
        self.axis, self.num_axes = axis, num_axes
        self.param_shape, self.from_bottom = tuple(param_shape), from_bottom

    def _axis(self, ndim, p_ndim):
        return 0 if p_ndim == 0 else canonical_axis(self.axis, ndim)

    def output_shapes(self, bottom_shapes):
        x = tuple(bottom_shapes[0])
        p_shape = tuple(bottom_shapes[1]) if self.from_bottom else self.param_shape
        _check_fits(x, self._axis(len(x), len(p_shape)), p_shape, self.WHAT)
        return [x]


class Scale(_AxisOp):
    BLOBS = ("weight", "bias")
    WHAT = "scale"

    def __init__(self, axis, num_axes, param_shape, from_bottom, bias_term):
        super().__init__(axis, num_axes, param_shape, from_bottom)
        self.weight = None if from_bottom else nn.Parameter(torch.ones(param_shape))
        self.bias = nn.Parameter(torch.zeros(param_shape)) if bias_term else None

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "scale_param")
        x = bottom_shapes[0]
        if len(bottom_shapes) > 1:
            shape = tuple(bottom_shapes[1])
            axis = 0 if len(shape) == 0 else canonical_axis(p.axis, len(x))
        else:
            axis, shape = _param_shape(x, p.axis, p.num_axes)
        return cls(p.axis, p.num_axes, shape, len(bottom_shapes) > 1, p.bias_term)

    def forward(self, x, *scale):
        s = scale[0] if self.from_bottom else self.weight
        axis = self._axis(x.dim(), s.dim())
        y = x * _broadcast(s, axis, x.dim())
        if self.bias is not None:
            y = y + _broadcast(self.bias, axis, x.dim())
        return y


class Bias(_AxisOp):
    BLOBS = ("bias",)
    WHAT = "bias"

    def __init__(self, axis, num_axes, param_shape, from_bottom):
        super().__init__(axis, num_axes, param_shape, from_bottom)
        self.bias = None if from_bottom else nn.Parameter(torch.zeros(param_shape))

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "bias_param")
        x = bottom_shapes[0]
        if len(bottom_shapes) > 1:
            shape = tuple(bottom_shapes[1])
        else:
            _, shape = _param_shape(x, p.axis, p.num_axes)
        return cls(p.axis, p.num_axes, shape, len(bottom_shapes) > 1)

    def forward(self, x, *bias):
        b = bias[0] if self.from_bottom else self.bias
        return x + _broadcast(b, self._axis(x.dim(), b.dim()), x.dim())
