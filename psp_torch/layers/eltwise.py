"""Eltwise: element-wise PROD, SUM (with optional per-bottom coeff) or MAX.

Caffe arithmetic: all bottoms share one shape; SUM (the default) accumulates
``top += coeff_i * bottom_i`` in bottom order (coeff default 1, one per
bottom when given); PROD multiplies in bottom order; MAX keeps the largest.
"""
from __future__ import annotations

from .base import CaffeLayer, sub_param

_OPS = {0: "prod", 1: "sum", 2: "max"}


class Eltwise(CaffeLayer):
    def __init__(self, operation: str = "sum", coeff=None):
        super().__init__()
        if operation not in ("prod", "sum", "max"):
            raise ValueError(f"unknown Eltwise operation {operation!r}")
        if coeff and operation != "sum":
            raise ValueError("Eltwise coeff is only for SUM")
        self.operation, self.coeff = operation, list(coeff) if coeff else None

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "eltwise_param")
        coeff = list(p.coeff)
        if coeff and len(coeff) != len(bottom_shapes):
            raise ValueError(f"Eltwise has {len(coeff)} coeff for {len(bottom_shapes)} bottoms")
        return cls(_OPS[p.operation], coeff)

    def output_shapes(self, bottom_shapes):
        if len(bottom_shapes) < 2:
            raise ValueError("Eltwise needs at least two bottoms")
        first = tuple(bottom_shapes[0])
        for s in bottom_shapes[1:]:
            if tuple(s) != first:
                raise ValueError(f"Eltwise bottoms must have one shape, got "
                                 f"{[tuple(b) for b in bottom_shapes]}")
        return [first]

    def forward(self, *bottoms):
        if self.operation == "sum":
            coeff = self.coeff or [1.0] * len(bottoms)
            top = bottoms[0] if coeff[0] == 1 else coeff[0] * bottoms[0]
            for c, b in zip(coeff[1:], bottoms[1:]):
                top = top + b if c == 1 else top + c * b
            return top
        top = bottoms[0]
        for b in bottoms[1:]:
            top = top * b if self.operation == "prod" else top.maximum(b)
        return top

    def extra_repr(self):
        return self.operation + (f", coeff={self.coeff}" if self.coeff else "")
