"""Caffe text format (deploy prototxt) of either dialect -> `Net`.

Text names fields, so the dialect is told by the names used: the fork's
``interp_param``/``bn_param`` or a fork-only layer type make a PSPNet net,
upstream's ``input_param``/``crop_param`` an upstream one; both at once cannot
be one file of either Caffe. The legacy header (``input:`` with ``input_dim:``
or ``input_shape``) and V1 ``layers { type: CONVOLUTION }`` nets are read too.
"""
from __future__ import annotations

import os
import re

from google.protobuf import text_format

from .dialect import FORK_TYPES, LAYER_CLASSES, NET_CLASSES
from .errors import CaffeFormatError
from .legacy import add_input_layers, declared_inputs, upgrade_v1_layer
from .limits import DEFAULT, Limits
from .net import PSPNET, UPSTREAM, Layer, Net

_COMMENT = re.compile(r"#[^\n]*")
_FORK_FIELDS = re.compile(r"\b(interp_param|bn_param)\b")
_UPSTREAM_FIELDS = re.compile(r"\b(input_param|crop_param)\b")
_TYPE = re.compile(r'\btype\s*:\s*"([^"\n]*)"')


def detect_text_dialect(text: str) -> str:
    """PSPNET, UPSTREAM, or "mixed" when the text uses the fields of both."""
    text = _COMMENT.sub("", text)
    fork = (_FORK_FIELDS.search(text) is not None
            or any(t in FORK_TYPES for t in _TYPE.findall(text)))
    upstream = _UPSTREAM_FIELDS.search(text) is not None
    if fork and upstream:
        return "mixed"
    return PSPNET if fork else UPSTREAM


def _looks_like_text(s: str) -> bool:
    return "\n" in s or "{" in s or (":" in s and not os.path.exists(s))


def _decode(data: bytes, source: str) -> str:
    if not data.strip():
        raise CaffeFormatError("empty prototxt", path=source)
    if b"\x00" in data:
        raise CaffeFormatError("binary data, not a text prototxt (a caffemodel?)",
                               path=source, offset=data.index(b"\x00"),
                               line=data[:data.index(b"\x00")].count(b"\n") + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise CaffeFormatError("not UTF-8 text (is this a binary caffemodel?)",
                               path=source, line=line, offset=exc.start) from exc


def load_prototxt(path_or_text, *, limits: Limits = DEFAULT) -> Net:
    """Parse a prototxt (a path, or the text itself) of either dialect into a `Net`."""
    if isinstance(path_or_text, bytes):
        return parse_prototxt(path_or_text, limits=limits)
    if isinstance(path_or_text, os.PathLike) or not _looks_like_text(path_or_text):
        source = os.fspath(path_or_text)
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise CaffeFormatError(f"cannot read: {exc.strerror}", path=source) from exc
        return parse_prototxt(data, source, limits=limits)
    return parse_prototxt(str(path_or_text), limits=limits)


def parse_prototxt(text, source: str = "<text>", *, limits: Limits = DEFAULT) -> Net:
    """Prototxt text (str, or bytes that must be UTF-8) -> `Net`."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = _decode(bytes(text), source)
    dialect = detect_text_dialect(text)
    if dialect == "mixed":
        raise CaffeFormatError(
            "mixes the PSPNet fork's fields (interp_param/bn_param or fork layer types) with "
            "upstream Caffe's (input_param/crop_param): the two dialects give field 143 "
            "different meanings", path=source)
    msg = NET_CLASSES[dialect]()
    try:
        text_format.Parse(text, msg, allow_unknown_field=False)
    except text_format.ParseError as exc:
        line = exc.GetLine() if hasattr(exc, "GetLine") else None
        raise CaffeFormatError(f"syntax error: {exc}", path=source, line=line) from exc
    except (ValueError, RecursionError) as exc:
        raise CaffeFormatError(f"cannot parse: {exc}", path=source) from exc
    return net_from_message(msg, dialect, source, limits)


def net_from_message(msg, dialect: str, source: str = "<memory>",
                     limits: Limits = DEFAULT) -> Net:
    """A parsed NetParameter/PSPNetParameter message -> `Net` (blobs copied out).

    Every layer gets the layer class of `dialect` (the slow path: blob values
    go through protobuf containers; binary files use `binary` instead).
    """
    from .blobs import blob_to_array

    layer_cls = LAYER_CLASSES[dialect]
    inputs = declared_inputs(msg, source, limits)
    layers = []
    if msg.layer and msg.layers:
        raise CaffeFormatError("has both V2 'layer' and V1 'layers' entries", path=source)
    problem = limits.layers_problem(len(msg.layer) + len(msg.layers))
    if problem:
        raise CaffeFormatError(problem, path=source, field="layer")
    for i, lp in enumerate(msg.layer):
        blobs = [blob_to_array(b, source, f"layer[{i}].blobs[{j}]", limits) for j, b in enumerate(lp.blobs)]
        param = layer_cls()
        param.CopyFrom(lp)
        param.ClearField("blobs")
        layers.append(Layer(lp.name, lp.type, list(lp.bottom), list(lp.top), param, blobs))
    for i, v1 in enumerate(msg.layers):
        blobs = [blob_to_array(b, source, f"layers[{i}].blobs[{j}]", limits) for j, b in enumerate(v1.blobs)]
        param = upgrade_v1_layer(v1, layer_cls)
        layers.append(Layer(param.name, param.type, list(param.bottom), list(param.top), param, blobs))
    add_input_layers(inputs, layers, source, limits)
    return Net(msg.name, dialect, inputs, layers, source)
