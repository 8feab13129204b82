"""Convolution and Deconvolution (2-D, Caffe layout and floor arithmetic).

Caffe arithmetic, per spatial axis, with ``extent = d * (k - 1) + 1``:

- Convolution: ``out = (H + 2p - extent) / s + 1`` (integer division);
  weights (num_output, C_in / group, kh, kw), bias (num_output,);
- Deconvolution (the adjoint): ``out = s * (H - 1) + extent - 2p``;
  weights (C_in, num_output / group, kh, kw), bias (num_output,);
- ``kernel_size``/``pad``/``stride``/``dilation`` hold one value for both axes
  or one per axis; ``kernel_h``/``kernel_w`` etc. replace them; ``group``
  splits input and output channels; ``bias_term`` (default true).

The ``ConvolutionData`` and ``HoleConvolutionData`` types of the released
caffemodels are aliases of Convolution (registered in the layer table).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import CaffeLayer, has, sub_param


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncation toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def conv_output_size(size: int, kernel: int, stride: int = 1, pad: int = 0,
                     dilation: int = 1) -> int:
    """Caffe's convolution output length of one axis (floor arithmetic)."""
    extent = dilation * (kernel - 1) + 1
    out = _cdiv(size + 2 * pad - extent, stride) + 1
    if out <= 0:
        raise ValueError(f"convolution kernel {kernel} (dilation {dilation}, pad {pad}, "
                         f"stride {stride}) does not fit an input of size {size}")
    return out


def deconv_output_size(size: int, kernel: int, stride: int = 1, pad: int = 0,
                       dilation: int = 1) -> int:
    """Caffe's deconvolution output length of one axis."""
    out = stride * (size - 1) + dilation * (kernel - 1) + 1 - 2 * pad
    if out <= 0:
        raise ValueError(f"deconvolution kernel {kernel} (pad {pad}, stride {stride}) on "
                         f"size {size} gives {out}")
    return out


def _spatial(p, name, default):
    """A repeated field of one value for both axes, or one per axis (2-D only)."""
    values = list(getattr(p, name))
    h, w = f"{name}_h", f"{name}_w"
    if name == "kernel_size":
        h, w = "kernel_h", "kernel_w"
    if has(p, h) or has(p, w):
        if values or not (has(p, h) and has(p, w)):
            raise ValueError(f"{name} is {name} OR ({h} and {w})")
        return getattr(p, h), getattr(p, w)
    if not values:
        if default is None:
            raise ValueError(f"{name} is required")
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise ValueError(f"{name} has {len(values)} values; only 2-D convolution is supported")


class _ConvBase(CaffeLayer):
    BLOBS = ("weight", "bias")
    transposed = False

    def __init__(self, in_channels, num_output, kernel, stride=(1, 1), pad=(0, 0),
                 dilation=(1, 1), group=1, bias_term=True):
        super().__init__()
        if in_channels % group or num_output % group:
            raise ValueError(f"group {group} must divide input channels {in_channels} and "
                             f"num_output {num_output}")
        self.in_channels, self.num_output, self.group = in_channels, num_output, group
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.pad, self.dilation = tuple(pad), tuple(dilation)
        if self.transposed:
            shape = (in_channels, num_output // group, *self.kernel)
            fan_in = in_channels // group * math.prod(self.kernel)
        else:
            shape = (num_output, in_channels // group, *self.kernel)
            fan_in = shape[1] * math.prod(self.kernel)
        self.weight = nn.Parameter(torch.empty(shape).normal_(0.0, math.sqrt(2.0 / fan_in)))
        self.bias = nn.Parameter(torch.zeros(num_output)) if bias_term else None

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "convolution_param")
        shape = bottom_shapes[0]
        if len(shape) != 4:
            raise ValueError(f"expects a 4-D (N, C, H, W) blob, got {tuple(shape)}")
        if p.axis not in (1, -3):
            raise ValueError(f"only channel axis 1 is supported, got axis {p.axis}")
        if not has(p, "num_output"):
            raise ValueError("convolution_param.num_output is required")
        if len(bottom_shapes) > 1 and any(tuple(s) != tuple(shape) for s in bottom_shapes[1:]):
            raise ValueError(f"all bottoms must have one shape, got {bottom_shapes}")
        return cls(shape[1], p.num_output, _spatial(p, "kernel_size", None),
                   _spatial(p, "stride", 1), _spatial(p, "pad", 0),
                   _spatial(p, "dilation", 1), p.group, p.bias_term)

    def _size(self, size, axis):
        f = deconv_output_size if self.transposed else conv_output_size
        return f(size, self.kernel[axis], self.stride[axis], self.pad[axis], self.dilation[axis])

    def output_shapes(self, bottom_shapes):
        """One top per bottom (Caffe convolves each bottom with the same weights)."""
        out = []
        for shape in bottom_shapes:
            if len(shape) != 4 or shape[1] != self.in_channels:
                raise ValueError(f"expects (N, {self.in_channels}, H, W), got {tuple(shape)}")
            out.append((shape[0], self.num_output, self._size(shape[2], 0),
                        self._size(shape[3], 1)))
        return out

    def extra_repr(self):
        return (f"{self.in_channels}, {self.num_output}, kernel={self.kernel}, "
                f"stride={self.stride}, pad={self.pad}, dilation={self.dilation}, "
                f"group={self.group}, bias={self.bias is not None}")


class Convolution(_ConvBase):
    """Caffe Convolution: cross-correlation, Caffe's floor output size."""

    def _one(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.pad, self.dilation,
                        self.group)

    def forward(self, *bottoms):
        tops = [self._one(x) for x in bottoms]
        return tops[0] if len(tops) == 1 else tops


class Deconvolution(_ConvBase):
    """Caffe Deconvolution: the transposed convolution, no output padding."""
    transposed = True

    def _one(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.pad, 0,
                                  self.group, self.dilation)

    def forward(self, *bottoms):
        tops = [self._one(x) for x in bottoms]
        return tops[0] if len(tops) == 1 else tops
