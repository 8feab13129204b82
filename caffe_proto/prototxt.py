"""Caffe text format (deploy prototxt) of either dialect -> `Net`."""
from __future__ import annotations

import os
import re

from google.protobuf import text_format

from . import caffe_pb2
from .errors import CaffeFormatError
from .legacy import declared_inputs, upgrade_v1_layer
from .net import PSPNET, UPSTREAM, Layer, Net

_FORK_MARKERS = re.compile(r'\b(interp_param|bn_param)\b|type\s*:\s*"(Interp|BN)"')
_UPSTREAM_MARKERS = re.compile(r'\b(input_param|crop_param)\b')


def detect_text_dialect(text: str) -> str:
    """PSPNET if the text uses the fork's own fields or layer types, else UPSTREAM."""
    fork = _FORK_MARKERS.search(text) is not None
    upstream = _UPSTREAM_MARKERS.search(text) is not None
    if fork and upstream:
        return "mixed"
    return PSPNET if fork else UPSTREAM


def _read_text(path_or_text):
    """(text, source name) from a path or from prototxt text itself."""
    if isinstance(path_or_text, os.PathLike) or (
            isinstance(path_or_text, str) and "\n" not in path_or_text
            and "{" not in path_or_text and ":" not in path_or_text.replace(os.sep, "")):
        source = os.fspath(path_or_text)
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise CaffeFormatError(f"cannot read: {exc.strerror}", path=source) from exc
        try:
            return data.decode("utf-8"), source
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            raise CaffeFormatError("not UTF-8 text (is this a binary caffemodel?)",
                                   path=source, line=line) from exc
    return str(path_or_text), "<text>"


def load_prototxt(path_or_text) -> Net:
    """Parse a prototxt (a path, or the text itself) of either dialect into a `Net`."""
    text, source = _read_text(path_or_text)
    dialect = detect_text_dialect(text)
    if dialect == "mixed":
        raise CaffeFormatError(
            "mixes the PSPNet fork's fields (interp_param/bn_param) with upstream Caffe's "
            "(input_param/crop_param): the two dialects give field 143 different meanings",
            path=source)
    net_cls = caffe_pb2.PSPNetParameter if dialect == PSPNET else caffe_pb2.NetParameter
    msg = net_cls()
    try:
        text_format.Parse(text, msg, allow_unknown_field=False)
    except text_format.ParseError as exc:
        line = getattr(exc, "_line", None)
        raise CaffeFormatError(f"syntax error: {exc}", path=source,
                               line=None if line is None else line + 0) from exc
    return net_from_message(msg, dialect, source)


def net_from_message(msg, dialect: str, source: str = "<memory>") -> Net:
    """A parsed NetParameter/PSPNetParameter message -> `Net` (blobs copied out)."""
    from .blobs import blob_to_array

    layer_cls = caffe_pb2.PSPLayerParameter if dialect == PSPNET else caffe_pb2.LayerParameter
    inputs = declared_inputs(msg, source)
    layers = []
    if msg.layer and msg.layers:
        raise CaffeFormatError("has both V2 'layer' and V1 'layers' entries", path=source)
    for i, lp in enumerate(msg.layer):
        blobs = [blob_to_array(b, source, f"layer[{i}].blobs[{j}]") for j, b in enumerate(lp.blobs)]
        param = layer_cls()
        param.CopyFrom(lp)
        param.ClearField("blobs")
        layers.append(Layer(lp.name, lp.type, list(lp.bottom), list(lp.top), param, blobs))
    for i, v1 in enumerate(msg.layers):
        blobs = [blob_to_array(b, source, f"layers[{i}].blobs[{j}]") for j, b in enumerate(v1.blobs)]
        param = upgrade_v1_layer(v1, layer_cls)
        layers.append(Layer(param.name, param.type, list(param.bottom), list(param.top), param, blobs))
    for layer in layers:
        if layer.type == "Input":
            for j, top in enumerate(layer.top):
                shapes = layer.param.input_param.shape if dialect == UPSTREAM else []
                shape = shapes[j] if j < len(shapes) else (shapes[0] if len(shapes) == 1 else None)
                inputs[top] = tuple(int(d) for d in shape.dim) if shape is not None else ()
    return Net(msg.name, dialect, inputs, layers, source)
