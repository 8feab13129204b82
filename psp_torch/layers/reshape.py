"""Flatten and Reshape: new shapes for the same values (row-major order).

Caffe arithmetic:
- Flatten: axes ``axis .. end_axis`` (defaults 1 and -1) become one axis;
- Reshape: axes ``axis .. axis + num_axes`` (defaults 0 and -1 = to the end;
  a negative ``axis`` counts from the end with -1 meaning after the last axis)
  are replaced by ``shape``, where 0 copies the bottom's dimension at that
  position and one -1 is inferred from the element count.
"""
from __future__ import annotations

import math

from .base import CaffeLayer, canonical_axis, sub_param


class Flatten(CaffeLayer):
    def __init__(self, axis: int = 1, end_axis: int = -1):
        super().__init__()
        self.axis, self.end_axis = axis, end_axis

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "flatten_param")
        return cls(p.axis, p.end_axis)

    def output_shapes(self, bottom_shapes):
        shape = tuple(bottom_shapes[0])
        a = canonical_axis(self.axis, len(shape))
        e = canonical_axis(self.end_axis, len(shape), "end_axis")
        if e < a:
            raise ValueError(f"Flatten end_axis {self.end_axis} before axis {self.axis}")
        return [shape[:a] + (math.prod(shape[a:e + 1]),) + shape[e + 1:]]

    def forward(self, x):
        return x.reshape(self.output_shapes([tuple(x.shape)])[0])


class Reshape(CaffeLayer):
    def __init__(self, shape, axis: int = 0, num_axes: int = -1):
        super().__init__()
        self.shape, self.axis, self.num_axes = [int(d) for d in shape], axis, num_axes
        if sum(d == -1 for d in self.shape) > 1:
            raise ValueError(f"Reshape shape {self.shape} has more than one -1")
        if any(d < -1 for d in self.shape):
            raise ValueError(f"Reshape shape {self.shape} has a dimension below -1")
        if num_axes < -1:
            raise ValueError(f"Reshape num_axes must be >= -1, got {num_axes}")

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "reshape_param")
        return cls(p.shape.dim, p.axis, p.num_axes)

    def output_shapes(self, bottom_shapes):
        bottom = tuple(bottom_shapes[0])
        n = len(bottom)
        start = self.axis if self.axis >= 0 else n + self.axis + 1
        if not 0 <= start <= n:
            raise ValueError(f"Reshape axis {self.axis} out of range for {bottom}")
        end = n if self.num_axes == -1 else start + self.num_axes
        if end > n:
            raise ValueError(f"Reshape axis {self.axis} + num_axes {self.num_axes} exceed {bottom}")
        new = []
        for i, d in enumerate(self.shape):
            if d == 0:
                if start + i >= n:
                    raise ValueError(f"Reshape copies axis {start + i} that {bottom} lacks")
                d = bottom[start + i]
            new.append(d)
        top = list(bottom[:start]) + new + list(bottom[end:])
        count = math.prod(bottom)
        if -1 in top:
            rest = math.prod(d for d in top if d != -1)
            if rest == 0 or count % rest:
                raise ValueError(f"Reshape cannot infer -1: {count} values into {top}")
            top[top.index(-1)] = count // rest
        if math.prod(top) != count:
            raise ValueError(f"Reshape of {bottom} ({count} values) into {tuple(top)}")
        return [tuple(top)]

    def forward(self, x):
        return x.reshape(self.output_shapes([tuple(x.shape)])[0])

    def extra_repr(self):
        return f"shape={self.shape}, axis={self.axis}, num_axes={self.num_axes}"
