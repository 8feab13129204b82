"""Protocol-buffer wire format, read field by field from a bytes-like buffer.

Only what the caffemodel reader needs: a field's tag, wire type and where its
payload lies. Nothing is copied; every length is checked against the bytes
that are really there before anyone trusts it, so a corrupt length can never
make a caller allocate more than the input holds.

Wire types: 0 varint, 1 fixed64, 2 length-delimited, 3/4 group start/end
(legacy, only ever skipped), 5 fixed32.
"""
from __future__ import annotations

from .errors import CaffeFormatError
from .limits import DEFAULT, Limits

VARINT, FIXED64, LEN, SGROUP, EGROUP, FIXED32 = 0, 1, 2, 3, 4, 5
WIRE_NAMES = {0: "varint", 1: "fixed64", 2: "length-delimited", 3: "start-group",
              4: "end-group", 5: "fixed32"}
MAX_FIELD_NUMBER = (1 << 29) - 1
MAX_GROUP_DEPTH = 100          # protobuf's own recursion limit
# Fields walked in Python per file (`Limits.fields`; a real net has a few thousand; runs
# of unpacked values count once; group start and end tags count too) bound the reader's
# Python-level work on any input, whatever its size.
_MASK64 = (1 << 64) - 1


class Source:
    """The buffer being read, the name of the file it came from (for errors) and,
    when it is a file, its descriptor (for reading values straight into arrays)."""

    __slots__ = ("buf", "path", "fd", "fields", "blobs", "values", "limits")

    def __init__(self, buf, path: str, fd: int | None = None, limits: Limits = DEFAULT):
        self.buf = buf
        self.path = path
        self.fd = fd
        self.limits = limits
        self.fields = 0          # fields walked so far (see Limits.fields)
        self.blobs = 0           # blobs read so far
        self.values = 0          # blob values read so far

    def fail(self, offset: int, field: str, message: str):
        raise CaffeFormatError(message, path=self.path, offset=offset, field=field)


def read_varint(src: Source, pos: int, end: int, field: str) -> tuple[int, int]:
    """(unsigned 64-bit value, position after it); at most 10 bytes."""
    buf = src.buf
    start = pos
    stop = min(end, pos + 10)
    result = 0
    shift = 0
    while pos < stop:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _MASK64, pos
        shift += 7
    if stop == end and pos - start < 10:
        src.fail(start, field, "truncated varint (the data ends inside a number)")
    src.fail(start, field, "varint longer than 10 bytes")


def as_int64(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def as_int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= (1 << 31) else value


def read_field(src: Source, pos: int, end: int, field: str, names=None):
    """One field at `pos`: (number, wire_type, a, b, next_pos).

    varint: a = value; fixed32/fixed64: a = payload offset; length-delimited and
    groups: [a, b) = payload. `field` names the enclosing message and `names`
    (field number -> path) the fields it knows, for error messages.
    """
    key, p = read_varint(src, pos, end, field)
    number = key >> 3
    wire = key & 7
    if number == 0 or number > MAX_FIELD_NUMBER:
        src.fail(pos, field, f"invalid field number {number} (is this a caffemodel?)")
    count_field(src, pos, field)

    def _sub(field, number):
        if names and number in names:
            return names[number]
        return f"{field}.<{number}>" if field else f"<{number}>"
    if wire == VARINT:
        value, p = read_varint(src, p, end, _sub(field, number))
        return number, wire, value, 0, p
    if wire == LEN:
        length, q = read_varint(src, p, end, _sub(field, number))
        if length > end - q:
            src.fail(pos, _sub(field, number),
                     f"declared length {length} runs past the end of its message "
                     f"({end - q} bytes left; truncated file?)")
        return number, wire, q, q + length, q + length
    if wire == FIXED32:
        if end - p < 4:
            src.fail(pos, _sub(field, number), "truncated 32-bit value")
        return number, wire, p, p + 4, p + 4
    if wire == FIXED64:
        if end - p < 8:
            src.fail(pos, _sub(field, number), "truncated 64-bit value")
        return number, wire, p, p + 8, p + 8
    if wire == SGROUP:
        q = skip_group(src, number, p, end, field)
        return number, wire, p, q, q
    if wire == EGROUP:
        src.fail(pos, field, f"end-group tag of field {number} without a start")
    src.fail(pos, field, f"invalid wire type {wire} (field {number})")


def count_field(src: Source, pos: int, field: str) -> None:
    """One more field walked; refuse the file past `Limits.fields`."""
    src.fields += 1
    if src.fields > src.limits.fields:
        src.fail(pos, field, f"more than {src.limits.fields:,} fields: not a plausible "
                             f"caffemodel (--max-layers raises the limit)")


def skip_group(src: Source, number: int, pos: int, end: int, field: str) -> int:
    """Position after the end-group tag that closes group `number` (opened before pos)."""
    stack = [number]
    while stack:
        if pos >= end:
            src.fail(pos, field, f"group {number} is not closed (truncated file?)")
        key, p = read_varint(src, pos, end, field)
        num, wire = key >> 3, key & 7
        if num == 0 or num > MAX_FIELD_NUMBER:
            src.fail(pos, field, f"invalid field number {num} inside group {number}")
        if wire == EGROUP:
            count_field(src, pos, field)
            if num != stack[-1]:
                src.fail(pos, field, f"end-group {num} closes group {stack[-1]}")
            stack.pop()
            pos = p
        elif wire == SGROUP:
            count_field(src, pos, field)
            if len(stack) >= MAX_GROUP_DEPTH:
                src.fail(pos, field, f"groups nested deeper than {MAX_GROUP_DEPTH}")
            stack.append(num)
            pos = p
        else:
            pos = read_field(src, pos, end, field)[4]
    return pos


def check_wire(src: Source, wire: int, allowed: tuple, pos: int, field: str, name: str):
    if wire not in allowed:
        want = " or ".join(WIRE_NAMES[w] for w in allowed)
        src.fail(pos, field, f"field {name} has wire type {WIRE_NAMES.get(wire, wire)}, "
                             f"expected {want}")
