"""Input (upstream): declares the net's input blobs and their shapes.

``input_param.shape`` holds one shape per top, or a single shape for all
tops. The graph turns the tops into named inputs; the layer computes nothing.
"""
from __future__ import annotations

from .base import CaffeLayer, LayerError, as_shape, has


class Input(CaffeLayer):
    def __init__(self, shapes):
        super().__init__()
        self.shapes = [as_shape(s) for s in shapes]

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        if bottom_shapes:
            raise ValueError("Input takes no bottoms")
        p = layer.param
        if "input_param" not in p.DESCRIPTOR.fields_by_name or not has(p, "input_param"):
            raise LayerError(f"Input layer {layer.name!r} declares no input_param shape")
        shapes = [tuple(s.dim) for s in p.input_param.shape]
        if len(shapes) == 1:
            shapes = shapes * len(layer.top)
        if len(shapes) != len(layer.top):
            raise ValueError(f"Input has {len(shapes)} shapes for {len(layer.top)} tops")
        return cls(shapes)

    def output_shapes(self, bottom_shapes):
        return list(self.shapes)

    def forward(self):
        raise RuntimeError("Input layers are fed by the graph, not run")
