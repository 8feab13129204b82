"""Softmax over one axis (default 1, the channels).

Caffe arithmetic: subtract the maximum along the axis, exponentiate, divide by
the sum along the axis.
"""
from __future__ import annotations

import torch

from .base import CaffeLayer, canonical_axis, sub_param


class Softmax(CaffeLayer):
    def __init__(self, axis: int = 1):
        super().__init__()
        self.axis = axis

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        axis = sub_param(layer, "softmax_param").axis
        canonical_axis(axis, len(bottom_shapes[0]))
        return cls(axis)

    def output_shapes(self, bottom_shapes):
        canonical_axis(self.axis, len(bottom_shapes[0]))
        return [tuple(bottom_shapes[0])]

    def forward(self, x):
        return torch.softmax(x, dim=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"
