"""Binary caffemodel -> `Net`, by a streaming wire-format reader.

The file is memory-mapped and walked field by field: NetParameter ->
``layer`` (field 100, V2) or ``layers`` (field 2, V1) -> ``blobs``. Blob values
are copied once into private float32 arrays, without a per-value Python loop:
packed floats are read with pread straight from the file into the array;
other encodings (unpacked floats, doubles) are converted by numpy from the
mapping, whose copied pages are released as the copy goes. Peak memory stays
near the file's size, and the arrays do not depend on the file afterwards
(it may be replaced or truncated). Everything else of a layer (name, type,
bottoms, tops, parameters, unknown fields) is small: its bytes are gathered
and parsed by protobuf with the layer message of the right dialect
(`dialect.layer_dialect`), so proto2 defaults, presence and unknown fields
behave exactly as in a protobuf parse.

Any malformed input raises `CaffeFormatError` naming the file, the byte
offset and the field path (``layer[17].blobs[0].data``).
"""
from __future__ import annotations

import mmap
import os

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError

from . import caffe_pb2
from .blobs import read_blob
from .dialect import LAYER_CLASSES, layer_dialect, net_dialect
from .errors import CaffeFormatError
from .legacy import add_input_layers, declared_inputs, upgrade_v1_layer
from .limits import DEFAULT, MAX_DEFINITION_BYTES, Limits
from .net import Layer, Net
from .sniff import describe_foreign, looks_like_prototxt
from .wire import LEN, Source, check_wire, read_field

# The bounds on a layer's definition, the layers, blobs and values of a file are
# `caffe_proto.limits` (`Limits`): they bound what a small hostile file can make the reader
# build or allocate.


def load_caffemodel(path, *, limits: Limits = DEFAULT) -> Net:
    """Read a binary caffemodel (either dialect, V1 or V2 layers) into a `Net`."""
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise CaffeFormatError(f"cannot read: {exc.strerror}", path=path) from exc
    with f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise CaffeFormatError("empty file (0 bytes): not a caffemodel", path=path)
        try:
            mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):              # a file system without mmap: read it
            try:
                return parse_caffemodel(f.read(), path, limits=limits)
            except OSError as exc:
                raise CaffeFormatError(f"cannot read: {exc.strerror}", path=path) from exc
        try:
            return parse_caffemodel(mapping, path, fd=f.fileno(), limits=limits)
        finally:
            mapping.close()


def parse_caffemodel(buf, source: str = "<memory>", *, fd: int | None = None,
                     limits: Limits = DEFAULT) -> Net:
    """A caffemodel held in a bytes-like buffer (bytes, mmap) -> `Net` (arrays are copies).

    `fd`, when `buf` maps a file, lets packed values be read from it directly.
    """
    if len(buf) == 0:
        raise CaffeFormatError("empty file (0 bytes): not a caffemodel", path=source)
    foreign = describe_foreign(bytes(buf[:16]))
    if foreign:
        raise CaffeFormatError(f"not a caffemodel: this looks like {foreign}",
                               path=source, offset=0)
    try:
        return _parse_net(Source(buf, source, fd, limits))
    except CaffeFormatError as exc:
        if looks_like_prototxt(bytes(buf[:64])):
            raise CaffeFormatError(f"{exc.reason} (this looks like a text prototxt: use "
                                   "load_prototxt)", path=source, offset=exc.offset,
                                   field=exc.field) from None
        raise


def _parse_net(src: Source) -> Net:
    buf, source, end = src.buf, src.path, len(src.buf)
    net_ranges, v2, v1 = [], [], []
    names = {100: "layer[0]", 2: "layers[0]"}          # for errors, kept current
    pos = 0
    while pos < end:
        tag = pos
        number, wire, a, b, pos = read_field(src, pos, end, "", names)
        if number == 100 or number == 2:
            problem = src.limits.layers_problem(len(v2) + len(v1) + 1)
            if problem:
                src.fail(tag, "layer", problem)
            check_wire(src, wire, (LEN,), tag, names[number], "layer" if number == 100 else "layers")
            if number == 100:
                v2.append(_scan_layer(src, tag, a, b, names[100], blob_field=7))
                names[100] = f"layer[{len(v2)}]"
            else:
                v1.append(_scan_layer(src, tag, a, b, names[2], blob_field=6))
                names[2] = f"layers[{len(v1)}]"
        else:
            _extend(net_ranges, tag, pos)
    if v2 and v1:
        raise CaffeFormatError("holds both V2 'layer' and V1 'layers' entries",
                               path=source, field="layers")

    header = _parse(src, caffe_pb2.NetParameter, _join(src, net_ranges, 0, "net"), 0, "net")
    _check_strings(src, header, 0, "net")
    inputs = declared_inputs(header, source, src.limits)

    if v1:
        layers, dialect = _v1_layers(src, v1)
    else:
        layers, dialect = _v2_layers(src, v2)
    add_input_layers(inputs, layers, source, src.limits)
    return Net(header.name, dialect, inputs, layers, source)


def _extend(ranges: list, start: int, stop: int) -> None:
    if ranges and ranges[-1][1] == start:
        ranges[-1][1] = stop
    else:
        ranges.append([start, stop])


def _join(src: Source, ranges, offset: int, field: str) -> bytes:
    total = sum(e - s for s, e in ranges)
    if total > MAX_DEFINITION_BYTES:
        src.fail(offset, field, f"definition of {total} bytes (without blobs) is implausibly "
                                f"large (limit {MAX_DEFINITION_BYTES})")
    return b"".join(bytes(src.buf[s:e]) for s, e in ranges)


def _scan_layer(src: Source, tag: int, start: int, end: int, field: str, blob_field: int):
    """(tag offset, definition bytes without blobs, blobs as arrays) of one layer message."""
    ranges, blobs = [], []
    pos = start
    names = {blob_field: f"{field}.blobs[0]"}         # for errors, kept current
    while pos < end:
        at = pos
        number, wire, a, b, pos = read_field(src, pos, end, field, names)
        if number == blob_field:
            where = names[blob_field]
            check_wire(src, wire, (LEN,), at, where, "blobs")
            src.blobs += 1
            if src.blobs > src.limits.blobs:
                src.fail(at, where, f"more than {src.limits.blobs:,} blobs: not a plausible net "
                                    f"(--max-layers raises the limit)")
            blobs.append(read_blob(src, a, b, where))
            names[blob_field] = f"{field}.blobs[{len(blobs)}]"
        elif number == 1 and blob_field == 6 and wire == LEN:
            src.fail(at, f"{field}.layer",
                     "a pre-2014 V0 layer (layers { layer { ... } }) is not supported; "
                     "upgrade the file with Caffe's upgrade_net_proto_binary")
        else:
            _extend(ranges, at, pos)
    return tag, _join(src, ranges, tag, field), blobs


def _parse(src: Source, cls, data: bytes, offset: int, field: str):
    try:
        return cls.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        src.fail(offset, field, f"definition does not parse as {cls.DESCRIPTOR.name}: {exc}")


def _v2_layers(src: Source, scanned):
    upstream = []
    for i, (tag, definition, _) in enumerate(scanned):
        msg = _parse(src, caffe_pb2.LayerParameter, definition, tag, f"layer[{i}]")
        if not isinstance(msg.type, str):
            src.fail(tag, f"layer[{i}].type", "layer type is not valid UTF-8")
        upstream.append(msg)
    dialect = net_dialect(m.type for m in upstream)
    layers = []
    for i, ((tag, definition, blobs), msg) in enumerate(zip(scanned, upstream)):
        cls = LAYER_CLASSES[layer_dialect(msg.type, dialect)]
        if not isinstance(msg, cls):
            msg = _parse(src, cls, definition, tag, f"layer[{i}]")
        _check_strings(src, msg, tag, f"layer[{i}]")
        layers.append(Layer(msg.name, msg.type, list(msg.bottom), list(msg.top), msg, blobs))
    return layers, dialect


def _v1_layers(src: Source, scanned):
    """V1 ``layers``: enum types (no fork types exist there), upgraded to V2 messages."""
    msgs = []
    for i, (tag, definition, _) in enumerate(scanned):
        msg = _parse(src, caffe_pb2.V1LayerParameter, definition, tag, f"layers[{i}]")
        _check_strings(src, msg, tag, f"layers[{i}]")
        msgs.append(msg)
    dialect = net_dialect(())
    layers = []
    for (tag, _, blobs), v1 in zip(scanned, msgs):
        param = upgrade_v1_layer(v1, LAYER_CLASSES[dialect])
        layers.append(Layer(param.name, param.type, list(param.bottom), list(param.top),
                            param, blobs))
    return layers, dialect


def _check_strings(src: Source, msg, offset: int, field: str) -> None:
    """Every string field must be UTF-8 (upb hands invalid ones back as bytes)."""
    for desc, value in msg.ListFields():
        if desc.type == FieldDescriptor.TYPE_STRING:
            values = value if desc.is_repeated else [value]
            for v in values:
                if not isinstance(v, str):
                    src.fail(offset, f"{field}.{desc.name}", f"string {bytes(v)[:40]!r} is not "
                                                             "valid UTF-8")
        elif desc.type == FieldDescriptor.TYPE_MESSAGE:
            values = value if desc.is_repeated else [value]
            for v in values:
                _check_strings(src, v, offset, f"{field}.{desc.name}")
