"""The reader's result: a plain description of a Caffe net (no torch here).

Both dialects and both layer encodings (V2 ``layer``, legacy V1 ``layers``)
end up as the same `Net` of `Layer` objects. A layer's settings stay a
protobuf message of the project's schema (`caffe_pb2.LayerParameter` for
upstream nets, `caffe_pb2.PSPLayerParameter` for the PSPNet fork) so that
proto2 defaults and field presence (``HasField``) behave as in Caffe; its
``blobs`` field is always empty there: the weights live in `Layer.blobs`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PSPNET = "pspnet"      # the PSPNet authors' fork (interp_param = 143, bn_param = 152)
UPSTREAM = "upstream"  # BVLC Caffe (input_param = 143, crop_param = 144)


@dataclass
class Layer:
    name: str
    type: str
    bottom: list[str]
    top: list[str]
    param: object                      # LayerParameter / PSPLayerParameter, blobs cleared
    blobs: list[np.ndarray] = field(default_factory=list)   # float32, Caffe shapes

    @property
    def blob_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(b.shape) for b in self.blobs]


@dataclass
class Net:
    name: str
    dialect: str                               # PSPNET or UPSTREAM
    inputs: dict[str, tuple[int, ...]]         # declared input blobs and shapes, in order
    layers: list[Layer]
    source: str = "<memory>"                   # file the net was read from

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"{self.source}: no layer named {name!r}")

    def by_name(self) -> dict[str, Layer]:
        return {layer.name: layer for layer in self.layers}
