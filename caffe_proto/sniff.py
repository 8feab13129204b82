"""What a file that is not a caffemodel looks like, from its first bytes."""
from __future__ import annotations

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

# (magic prefix, description); checked in order.
_MAGICS = [
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a zip archive (a PyTorch .pth checkpoint is one)"),
    (b"PK\x05\x06", "an empty zip archive"),
    (HDF5_MAGIC, "an HDF5 file (Caffe's .caffemodel.h5 weights: use load_hdf5 or load_weights)"),
    (b"\x1f\x8b", "a gzip-compressed file (decompress it first)"),
    (b"BZh", "a bzip2-compressed file (decompress it first)"),
    (b"\xfd7zXZ\x00", "an xz-compressed file (decompress it first)"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-zip archive"),
    (b"\x93NUMPY", "a numpy .npy array"),
    (b"%PDF", "a PDF document"),
    (b"<!DOCTYPE", "an HTML page (a failed download?)"),
    (b"<html", "an HTML page (a failed download?)"),
    (b"<!doctype", "an HTML page (a failed download?)"),
]


def describe_foreign(head: bytes) -> str | None:
    """A description when `head` (the file's first bytes) has another format's magic.

    No caffemodel written by Caffe starts with any of these bytes.
    """
    for magic, what in _MAGICS:
        if head.startswith(magic):
            return what
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle (an old-style torch.save file)"
    return None


_TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def looks_like_prototxt(head: bytes) -> bool:
    """Printable text starting like a prototxt (only a hint: a binary net whose name
    field happens to be printable looks the same, so ask only after a parse failed)."""
    if not head or any(b not in _TEXT_BYTES for b in head):
        return False
    stripped = head.lstrip()
    return stripped.startswith((b"name", b"layer", b"input", b"#", b"force_backward", b"state"))


# NetParameter's top-level fields: number -> wire types a writer uses for it.
_NET_FIELDS = {1: (2,), 2: (2,), 3: (2,), 4: (0, 2), 5: (0,), 6: (2,), 7: (0,), 8: (2,),
               100: (2,)}


def looks_like_caffemodel(head: bytes) -> bool:
    """The first bytes of a file read as a binary NetParameter that reaches a layer: a run of
    known top-level fields (name, input, input_dim, input_shape, state, ...) with valid wire
    types, ending in a ``layer`` (100) or ``layers`` (2) field. Only a recogniser for error
    messages: the reader proper checks everything."""
    pos, end = 0, len(head)

    def varint(p):
        value, shift = 0, 0
        while p < end and shift < 64:
            b = head[p]
            value |= (b & 0x7F) << shift
            p += 1
            if b < 0x80:
                return value, p
            shift += 7
        return None, p
    for _ in range(64):
        if pos >= end:
            return False
        key, pos = varint(pos)
        if key is None:
            return False
        number, wire = key >> 3, key & 7
        if wire not in _NET_FIELDS.get(number, ()):
            return False
        if number in (2, 100):
            return True
        if wire == 0:
            value, pos = varint(pos)
            if value is None:
                return False
        else:
            length, pos = varint(pos)
            if length is None:
                return False
            pos += length
    return False


def is_hdf5(head: bytes) -> bool:
    return head.startswith(HDF5_MAGIC)
