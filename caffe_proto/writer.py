"""`Net` -> binary caffemodel (upstream-compatible) and -> prototxt text.

The binary form is what upstream Caffe's Net::ToProto writes: V2 ``layer``
messages (field 100) whose ``blobs`` (field 7) carry a BlobShape and packed
float32 ``data``, fields in protobuf's canonical (field-number) order. Each
layer's definition is serialized with its own message class, so a fork net
keeps the fork's numbering (interp_param at 143). Blob values go from the
numpy buffer to the file without an intermediate protobuf container. The file
appears atomically: written to a temporary file beside it, then renamed.
"""
from __future__ import annotations

import os

import numpy as np
from google.protobuf import text_format

from . import caffe_pb2
from .atomic import atomic_write
from .net import Net
from .wire import Source, read_field


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint((number << 3) | wire)


def _net_inputs(net: Net) -> dict:
    """Declared inputs that no Input layer produces (those travel as layers)."""
    from_layers = {t for layer in net.layers if layer.type == "Input" for t in layer.top}
    return {k: v for k, v in net.inputs.items() if k not in from_layers}


def _header(net: Net) -> bytes:
    msg = caffe_pb2.NetParameter(name=net.name)     # Caffe always writes the name
    inputs = _net_inputs(net)
    msg.input.extend(inputs)
    if inputs and all(len(s) for s in inputs.values()):
        for shape in inputs.values():
            msg.input_shape.add().dim.extend(int(d) for d in shape)
    return msg.SerializeToString()


def _definition(param) -> bytes:
    if len(param.blobs):
        param = type(param).FromString(param.SerializeToString())
        param.ClearField("blobs")
    return param.SerializeToString()


def _split_at_blobs(definition: bytes) -> int:
    """Byte position where field 7 belongs among the serialized fields (number order)."""
    src = Source(definition, "<definition>")
    pos = 0
    while pos < len(definition):
        number, _, _, _, nxt = read_field(src, pos, len(definition), "layer")
        if number > 7:
            return pos
        pos = nxt
    return pos


def _blob_pieces(blob) -> tuple[bytes, np.ndarray, bytes]:
    """A BlobProto as (bytes before the values, values as little-endian float32, bytes after).

    Canonical field order: ``data`` (5) then ``shape`` (7); no data field when empty.
    """
    values = np.require(blob, dtype="<f4", requirements="C")
    shape = caffe_pb2.BlobShape(dim=[int(d) for d in values.shape]).SerializeToString()
    shape_field = _key(7, 2) + _varint(len(shape)) + shape
    head = _key(5, 2) + _varint(values.nbytes) if values.size else b""
    return head, values, shape_field


def _write_layer(f, param, blobs) -> None:
    definition = _definition(param)
    cut = _split_at_blobs(definition)
    encoded = []
    size = len(definition)
    for blob in blobs:
        head, values, tail = _blob_pieces(blob)
        prefix = _key(7, 2) + _varint(len(head) + values.nbytes + len(tail)) + head
        encoded.append((prefix, values, tail))
        size += len(prefix) + values.nbytes + len(tail)
    f.write(_key(100, 2) + _varint(size))
    f.write(definition[:cut])
    for prefix, values, tail in encoded:
        f.write(prefix)
        if values.nbytes:
            f.write(memoryview(values.reshape(-1)).cast("B"))
        f.write(tail)
    f.write(definition[cut:])


def save_caffemodel(net: Net, path, *, progress: bool = False) -> None:
    """Write `net` (definitions and blobs) as a binary caffemodel, atomically."""
    path = os.fspath(path)

    def write(tmp):
        with open(tmp, "wb", buffering=1 << 20) as f:
            f.write(_header(net))
            layers = net.layers
            if progress:
                from tqdm import tqdm
                layers = tqdm(layers, desc=f"writing {os.path.basename(path)}", unit="layer")
            for layer in layers:
                _write_layer(f, layer.param, layer.blobs)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def net_to_prototxt(net: Net) -> str:
    """The net's definition (no blobs) in Caffe's text format, in the net's dialect."""
    out = []
    if net.name:
        out.append(f'name: "{_escape(net.name)}"')
    inputs = _net_inputs(net)
    for name in inputs:
        out.append(f'input: "{_escape(name)}"')
    if inputs and all(len(s) for s in inputs.values()):
        for shape in inputs.values():
            out.append("input_shape {\n" + "".join(f"  dim: {int(d)}\n" for d in shape) + "}")
    for layer in net.layers:
        param = layer.param
        if len(param.blobs):
            param = type(param).FromString(param.SerializeToString())
            param.ClearField("blobs")
        body = text_format.MessageToString(param, as_utf8=True, indent=2)
        out.append("layer {\n" + body + "}")
    return "\n".join(out) + "\n"


def _escape(s: str) -> str:
    return text_format.MessageToString(caffe_pb2.NetParameter(name=s), as_utf8=True) \
        .split(":", 1)[1].strip()[1:-1]
