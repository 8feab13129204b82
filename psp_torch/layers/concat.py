"""Concat, Slice and Split: blobs joined, cut or shared along one axis.

Caffe arithmetic:
- Concat: bottoms joined in order along ``axis`` (default 1; the legacy
  ``concat_dim`` wins when set); all other axes must agree;
- Slice: the bottom cut along ``axis`` (legacy ``slice_dim`` wins when set)
  at the increasing ``slice_point`` list (one fewer than the tops), or into
  equal parts when no point is given;
- Split: every top is the bottom itself (Caffe inserts Split layers where one
  blob feeds several layers; saved caffemodels contain them).
"""
from __future__ import annotations

import torch

from .base import CaffeLayer, canonical_axis, has, sub_param


class Concat(CaffeLayer):
    def __init__(self, axis: int = 1):
        super().__init__()
        self.axis = axis

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "concat_param")
        return cls(p.concat_dim if has(p, "concat_dim") else p.axis)

    def output_shapes(self, bottom_shapes):
        first = tuple(bottom_shapes[0])
        axis = canonical_axis(self.axis, len(first))
        total = 0
        for s in bottom_shapes:
            s = tuple(s)
            if len(s) != len(first) or s[:axis] + s[axis + 1:] != first[:axis] + first[axis + 1:]:
                raise ValueError(f"Concat along axis {axis}: bottom shapes "
                                 f"{[tuple(b) for b in bottom_shapes]} differ off that axis")
            total += s[axis]
        return [first[:axis] + (total,) + first[axis + 1:]]

    def forward(self, *bottoms):
        return torch.cat(bottoms, dim=self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"


class Slice(CaffeLayer):
    def __init__(self, num_tops: int, axis: int = 1, slice_points=()):
        super().__init__()
        self.num_tops, self.axis, self.slice_points = num_tops, axis, list(slice_points)
        if self.slice_points and len(self.slice_points) != num_tops - 1:
            raise ValueError(f"Slice has {len(self.slice_points)} slice_point for "
                             f"{num_tops} tops (needs {num_tops - 1})")

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "slice_param")
        return cls(len(layer.top), p.slice_dim if has(p, "slice_dim") else p.axis,
                   p.slice_point)

    def sizes(self, dim: int) -> list[int]:
        if not self.slice_points:
            if dim % self.num_tops:
                raise ValueError(f"Slice cannot cut {dim} into {self.num_tops} equal parts")
            return [dim // self.num_tops] * self.num_tops
        bounds = [0] + self.slice_points + [dim]
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
        if any(s <= 0 for s in sizes):
            raise ValueError(f"slice points {self.slice_points} must increase inside (0, {dim})")
        return sizes

    def output_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        axis = canonical_axis(self.axis, len(shape))
        return [shape[:axis] + (n,) + shape[axis + 1:] for n in self.sizes(shape[axis])]

    def forward(self, x):
        axis = canonical_axis(self.axis, x.dim())
        return list(torch.split(x, self.sizes(x.shape[axis]), dim=axis))

    def extra_repr(self):
        return f"axis={self.axis}, slice_points={self.slice_points}"


class Split(CaffeLayer):
    def __init__(self, num_tops: int):
        super().__init__()
        self.num_tops = num_tops

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        return cls(len(layer.top))

    def output_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])] * self.num_tops

    def forward(self, x):
        return [x] * self.num_tops
