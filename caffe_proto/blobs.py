"""BlobProto -> numpy float32 array in its Caffe shape.

Caffe's rules (Blob::FromProto): the legacy 4-D num/channels/height/width
win when any of them is present, else ``shape.dim``; the values come from
``double_data`` when it holds any, else from ``data``; their count must equal
the shape's. ``diff``/``double_diff`` (gradients of a snapshot) are ignored.
A blob with no shape at all is read as 1-D (Caffe would call it a scalar).

Two readers of the same rules: `blob_to_array` for a parsed protobuf message,
`read_blob` straight from the wire bytes, without a per-value Python loop.
"""
from __future__ import annotations

import mmap
import os

import numpy as np

from .errors import CaffeFormatError
from .limits import DEFAULT, Limits, shape_count
from .wire import (FIXED32, FIXED64, LEN, VARINT, Source, as_int32, as_int64,
                   check_wire, read_field, read_varint)

MAX_AXES = 32                  # Caffe's kMaxBlobAxes
MAX_DIM = (1 << 31) - 1        # Caffe keeps shapes in int
_LEGACY = ("num", "channels", "height", "width")
_COPY_CHUNK = 1 << 22          # values copied (and released from the mapping) at a time


def _check_shape(shape, count, source, field, offset=None, limits: Limits = DEFAULT):
    """Caffe's shape rules, then the shape's and the values' count against `limits`, then
    the count against the shape (all before any array is made)."""
    if len(shape) > MAX_AXES:
        raise CaffeFormatError(f"{len(shape)} axes (Caffe allows {MAX_AXES})",
                               path=source, offset=offset, field=field)
    for d in shape:
        if d < 0 or d > MAX_DIM:
            raise CaffeFormatError(f"shape {tuple(shape)} has an impossible dimension {d}",
                                   path=source, offset=offset, field=field)
    need = shape_count(shape)
    for problem in (limits.values_problem(need, f"shape {tuple(shape)} declares"),
                    limits.values_problem(count, "the blob holds")):
        if problem:
            raise CaffeFormatError(problem, path=source, offset=offset, field=field)
    if need != count:
        raise CaffeFormatError(f"shape {tuple(shape)} needs {need} values, found {count}",
                               path=source, offset=offset, field=field)


def blob_shape(blob) -> tuple[int, ...]:
    """The shape of a parsed BlobProto (see the module rules)."""
    if any(blob.HasField(f) for f in _LEGACY):
        return (blob.num, blob.channels, blob.height, blob.width)
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    return (len(blob.double_data) or len(blob.data),)


def blob_to_array(blob, source="<memory>", field="blob", limits: Limits = DEFAULT) -> np.ndarray:
    """A parsed BlobProto as float32 in its shape (slow path: protobuf containers)."""
    shape = blob_shape(blob)
    if len(blob.double_data):
        values = np.asarray(blob.double_data, dtype=np.float64).astype(np.float32)
    else:
        values = np.asarray(blob.data, dtype=np.float32)
    _check_shape(shape, values.size, source, field, limits=limits)
    return values.reshape(shape)


# ---------------------------------------------------------------- wire reader

def _release(buf, offset: int, nbytes: int) -> None:
    """Drop already-copied pages of a file mapping from this process's memory."""
    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED") and nbytes > 0:
        start = offset - offset % mmap.PAGESIZE
        try:
            buf.madvise(mmap.MADV_DONTNEED, start, offset + nbytes - start)
        except (OSError, ValueError):
            pass


def _run_length(buf, pos: int, end: int, rec: int) -> int:
    """How many consecutive unpacked records of `rec` bytes, each starting with
    the one-byte tag found at `pos`, begin at pos (at least 1).

    Unpacked repeated floats are one field per value; a whole run of them is
    located with numpy instead of a Python loop per value.
    """
    tag = buf[pos]
    n = 0
    k = n_max = 1
    while k == n_max:                # a full chunk matched: the run may go on
        n_max = min((end - pos) // rec, _COPY_CHUNK)
        if n_max == 0:
            break
        tags = np.ndarray((n_max,), np.uint8, buffer=buf, offset=pos, strides=(rec,))
        stops = np.flatnonzero(tags != tag)
        del tags
        k = int(stops[0]) if stops.size else n_max
        n += k
        pos += k * rec
    return n


# field number -> (name, bytes per value, wire type of an unpacked value)
_VALUE_FIELDS = {5: ("data", 4, FIXED32), 6: ("diff", 4, FIXED32),
                 8: ("double_data", 8, FIXED64), 9: ("double_diff", 8, FIXED64)}


def _names(field: str) -> dict:
    return {5: f"{field}.data", 6: f"{field}.diff", 7: f"{field}.shape",
            8: f"{field}.double_data", 9: f"{field}.double_diff", 1: f"{field}.num",
            2: f"{field}.channels", 3: f"{field}.height", 4: f"{field}.width"}


class _BlobScan:
    __slots__ = ("dims", "has_shape", "legacy", "floats", "n_floats", "doubles", "n_doubles")

    def __init__(self):
        self.dims = []
        self.has_shape = False
        self.legacy = {}
        self.floats = []         # (offset, count, stride) segments of the buffer
        self.n_floats = 0
        self.doubles = []
        self.n_doubles = 0


def _read_shape(src: Source, start: int, end: int, field: str, dims: list) -> None:
    names = {1: f"{field}.dim"}
    pos = start
    while pos < end:
        tag = pos
        number, wire, a, b, pos = read_field(src, pos, end, field, names)
        if number != 1:
            continue                         # unknown BlobShape field: skipped
        check_wire(src, wire, (VARINT, LEN), tag, field, "dim")
        if wire == VARINT:
            dims.append(as_int64(a))
        else:
            p = a
            while p < b:
                v, p = read_varint(src, p, b, f"{field}.dim")
                dims.append(as_int64(v))
        if len(dims) > MAX_AXES:
            src.fail(tag, f"{field}.dim", f"more than {MAX_AXES} axes")


def read_blob(src: Source, start: int, end: int, field: str) -> np.ndarray:
    """The BlobProto payload at buffer[start:end] as float32 in its shape."""
    buf = src.buf
    scan = _BlobScan()
    names = _names(field)
    pos = start
    while pos < end:
        tag = pos
        number, wire, a, b, pos = read_field(src, pos, end, field, names)
        if number in _VALUE_FIELDS:                          # data, diff, double_*
            name, item, single = _VALUE_FIELDS[number]
            check_wire(src, wire, (LEN, single), tag, f"{field}.{name}", name)
            if wire == LEN:
                if (b - a) % item:
                    src.fail(tag, f"{field}.{name}",
                             f"packed values of {b - a} bytes (not a multiple of {item})")
                segment = (a, (b - a) // item, item)
            elif a - tag == 1:                               # unpacked: a run of records
                n = _run_length(buf, tag, end, item + 1)
                segment = (a, n, item + 1)
                pos = tag + n * (item + 1)
            else:                                            # unpacked, long tag: one value
                segment = (a, 1, item)
            if number == 5:
                scan.floats.append(segment)
                scan.n_floats += segment[1]
            elif number == 8:
                scan.doubles.append(segment)
                scan.n_doubles += segment[1]
        elif number == 7:                                    # shape
            check_wire(src, wire, (LEN,), tag, f"{field}.shape", "shape")
            scan.has_shape = True
            _read_shape(src, a, b, f"{field}.shape", scan.dims)
        elif 1 <= number <= 4:                               # num, channels, height, width
            check_wire(src, wire, (VARINT,), tag, f"{field}.{_LEGACY[number - 1]}",
                       _LEGACY[number - 1])
            scan.legacy[number] = as_int32(a)
        # any other field: not Caffe's, skipped

    if scan.legacy:
        shape = tuple(scan.legacy.get(i, 0) for i in range(1, 5))
    elif scan.has_shape:
        shape = tuple(scan.dims)
    else:
        shape = (scan.n_doubles or scan.n_floats,)
    if scan.n_doubles:
        segments, count, dtype, name = scan.doubles, scan.n_doubles, "<f8", "double_data"
    else:
        segments, count, dtype, name = scan.floats, scan.n_floats, "<f4", "data"
    _check_shape(shape, count, src.path, f"{field}.{name}", start, src.limits)
    src.values += count
    problem = src.limits.values_problem(src.values, "the file's blobs hold")
    if problem:
        src.fail(start, f"{field}.{name}", problem)
    return _gather(src, segments, count, dtype).reshape(shape)


def _gather(src: Source, segments, count: int, dtype: str) -> np.ndarray:
    """One float32 array from the value segments (offset, count, stride in bytes).

    Each value is copied once. Packed float32 values of a file are read with
    pread straight into the array; anything else is copied from the buffer,
    and copied pages of a file mapping are released as the copy goes, so the
    process never holds the file twice.
    """
    buf = src.buf
    out = np.empty(count, dtype=np.float32)
    i = 0
    for offset, n, stride in segments:
        if src.fd is not None and dtype == "<f4" and stride == 4 and _LITTLE:
            _pread(src, offset, out[i:i + n])
            i += n
            continue
        for k in range(0, n, _COPY_CHUNK):
            m = min(_COPY_CHUNK, n - k)
            at = offset + k * stride
            view = np.ndarray((m,), dtype, buffer=buf, offset=at, strides=(stride,))
            out[i + k:i + k + m] = view
            del view
            _release(buf, at, m * stride)
        i += n
    return out


_LITTLE = np.little_endian


def _pread(src: Source, offset: int, out: np.ndarray) -> None:
    target = memoryview(out).cast("B")
    done = 0
    while done < len(target):
        try:
            got = os.preadv(src.fd, [target[done:]], offset + done)
        except OSError as exc:
            src.fail(offset + done, "", f"cannot read: {exc.strerror}")
        if got <= 0:
            src.fail(offset + done, "", "the file became shorter while it was read")
        done += got
