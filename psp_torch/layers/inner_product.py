"""InnerProduct: a fully connected layer over the axes from ``axis`` on.

Caffe arithmetic: the bottom is viewed as (M, K) with ``M = prod(shape[:axis])``
and ``K = prod(shape[axis:])``; ``top = x W^T + b`` with weights
(num_output, K) (or (K, num_output) when ``transpose``), bias (num_output,);
top shape ``shape[:axis] + (num_output,)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import CaffeLayer, canonical_axis, has, sub_param


class InnerProduct(CaffeLayer):
    BLOBS = ("weight", "bias")

    def __init__(self, in_features, num_output, axis=1, bias_term=True, transpose=False):
        super().__init__()
        self.in_features, self.num_output = in_features, num_output
        self.axis, self.transpose = axis, transpose
        shape = (in_features, num_output) if transpose else (num_output, in_features)
        self.weight = nn.Parameter(torch.empty(shape).normal_(0.0, math.sqrt(2.0 / in_features)))
        self.bias = nn.Parameter(torch.zeros(num_output)) if bias_term else None

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "inner_product_param")
        if not has(p, "num_output"):
            raise ValueError("inner_product_param.num_output is required")
        shape = bottom_shapes[0]
        axis = canonical_axis(p.axis, len(shape))
        return cls(math.prod(shape[axis:]), p.num_output, axis, p.bias_term, p.transpose)

    def output_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        k = math.prod(shape[self.axis:])
        if k != self.in_features:
            raise ValueError(f"bottom {shape} flattens to {k} features from axis {self.axis}, "
                             f"the weights take {self.in_features}")
        return [shape[:self.axis] + (self.num_output,)]

    def forward(self, x):
        x = x.flatten(self.axis)
        w = self.weight.t() if self.transpose else self.weight
        return F.linear(x, w, self.bias)

    def extra_repr(self):
        return (f"{self.in_features}, {self.num_output}, axis={self.axis}, "
                f"bias={self.bias is not None}")
