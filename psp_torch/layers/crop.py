"""Crop (upstream Caffe): cut bottom 0 to the shape of bottom 1.

Caffe arithmetic: axes before ``axis`` (default 2) are kept; each axis i from
``axis`` on takes bottom 1's size starting at ``offset`` (none: 0; one value:
for every cropped axis; else one value per cropped axis);
``offset + size`` must fit bottom 0.
"""
from __future__ import annotations

from .base import CaffeLayer, canonical_axis, sub_param


class Crop(CaffeLayer):
    def __init__(self, axis: int = 2, offset=()):
        super().__init__()
        self.axis, self.offset = axis, [int(o) for o in offset]

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "crop_param")
        return cls(p.axis, p.offset)

    def _window(self, a_shape, b_shape):
        if len(a_shape) != len(b_shape):
            raise ValueError(f"Crop bottoms {tuple(a_shape)} and {tuple(b_shape)} differ in "
                             "number of axes")
        start = canonical_axis(self.axis, len(a_shape))
        if len(self.offset) not in (0, 1, len(a_shape) - start):
            raise ValueError(f"Crop has {len(self.offset)} offsets for "
                             f"{len(a_shape) - start} cropped axes")
        window = []
        for i, size in enumerate(a_shape):
            if i < start:
                window.append((0, size))
                continue
            off = 0 if not self.offset else self.offset[0 if len(self.offset) == 1 else i - start]
            if off + b_shape[i] > size:
                raise ValueError(f"Crop of axis {i}: offset {off} + size {b_shape[i]} exceeds "
                                 f"{size}")
            window.append((off, b_shape[i]))
        return window

    def output_shapes(self, bottom_shapes):
        return [tuple(n for _, n in self._window(bottom_shapes[0], bottom_shapes[1]))]

    def forward(self, x, like):
        for axis, (off, n) in enumerate(self._window(tuple(x.shape), tuple(like.shape))):
            if off or n != x.shape[axis]:
                x = x.narrow(axis, off, n)
        return x

    def extra_repr(self):
        return f"axis={self.axis}, offset={self.offset}"
