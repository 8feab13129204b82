"""Reading a dataset's files: images as RGB uint8, label PNGs as their stored values, the
authors' list files, and the check that every listed file is there before a run starts.

Images are read as RGB uint8; grey images are replicated to 3 channels; EXIF orientation is
ignored (as MATLAB's imread does). Label PNGs are read with Pillow, which returns the palette
indices of a palette PNG (OpenCV would return the palette colours).

Every file here may be a stranger's, so each reader checks what a file declares before it
allocates: an image's or label's width x height is read from its header and refused above
`max_pixels` (default `MAX_PIXELS`, raised by the CLIs' ``--max-pixels``) before anything is
decoded; a list file's lines are read one at a time, each at most `MAX_LIST_LINE` bytes, at
most `MAX_LIST_LINES` of them, and a listed path may not leave the data root (``..``).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from PIL import Image

from caffe_proto.printable import printable

MAX_PIXELS = 150_000_000     # width x height decoded at most by default: a 150-megapixel photo
                             # or a 12,000 x 12,000 aerial tile passes (CLIs: --max-pixels)
MAX_LIST_LINE = 4096         # bytes of one list-file line (two paths)
MAX_LIST_LINES = 1_000_000   # lines of one list file (the largest benchmark split: 20,210)


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or holds values outside the convention."""


@dataclass(frozen=True)
class Sample:
    name: str                   # output file stem
    image: Path
    label: Path | None = None
    instances: Path | None = None   # instance map beside the label (may be absent on disk)


def _open_header(path: str | Path, fp) -> Image.Image:
    """Pillow's image object of an open file, its header read and nothing decoded, found the
    way `Image.open` finds it but without its own decompression-bomb check (which raises
    without the size and ignores --max-pixels): `_check_pixels` is the check here."""
    Image.init()
    prefix = fp.read(16)
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        try:
            if accept and not accept(prefix):
                continue
            fp.seek(0)
            return factory(fp, str(path))
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue
    raise DatasetError(f"{printable(path)}: cannot read image (not a file of a known image "
                       f"format)")


def _check_pixels(path, size: tuple, max_pixels: int | None) -> None:
    w, h = size
    if max_pixels is not None and w * h > max_pixels:
        raise DatasetError(f"{printable(path)}: image of {w}x{h} pixels ({w * h:,}) is above "
                           f"the limit of {max_pixels:,} pixels (--max-pixels raises it)")


def image_size(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the file's header, nothing decoded; above `max_pixels` (None: no
    limit) a `DatasetError` naming the file and its size."""
    try:
        with open(path, "rb") as fp, _open_header(path, fp) as im:
            size = im.size
    except DatasetError:
        raise
    except (OSError, ValueError) as e:
        raise DatasetError(f"{printable(path)}: cannot read image ({printable(e)})") from None
    _check_pixels(path, size, max_pixels)
    return size


def read_image(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """RGB uint8 (H, W, 3); grey replicated to 3 channels. The header's size is checked
    against `max_pixels` before decoding, and the decoded image must have that size."""
    if not Path(path).is_file():
        raise DatasetError(f"{printable(path)}: cannot read image (no such file)")
    w, h = image_size(path, max_pixels)
    data = np.fromfile(str(path), np.uint8)
    img = None if data.size == 0 else cv2.imdecode(
        data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise DatasetError(f"{printable(path)}: cannot read image")
    if img.shape[:2] != (h, w):
        raise DatasetError(f"{printable(path)}: decoded {img.shape[1]}x{img.shape[0]} pixels, "
                           f"its header says {w}x{h}")
    return np.ascontiguousarray(img[:, :, ::-1])


def read_png_values(path: str | Path, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """The stored values of a single-channel PNG (palette indices for palette PNGs); its
    header's size is checked against `max_pixels` before decoding."""
    try:
        with open(path, "rb") as fp, _open_header(path, fp) as im:
            _check_pixels(path, im.size, max_pixels)
            if im.mode not in ("P", "L", "I;16", "I", "1"):
                raise DatasetError(f"{printable(path)}: label PNG must be single-channel, got "
                                   f"mode {im.mode}")
            a = np.array(im)
    except DatasetError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{printable(path)}: cannot read label ({printable(e)})") from None
    return a


def missing_files(items: list[Sample]) -> list[str]:
    """Every image/label that does not exist or cannot be opened, with the reason."""
    bad = []
    for s in items:
        for p in (s.image, s.label):
            if p is None:
                continue
            if not p.is_file():
                bad.append(f"{p} (missing)")
            elif not os.access(p, os.R_OK) or p.stat().st_size == 0:
                bad.append(f"{p} (unreadable or empty)")
    return bad


def list_lines(path: str | Path):
    """(line number, text) of each line of a list file, read one line at a time: a line above
    `MAX_LIST_LINE` bytes, more than `MAX_LIST_LINES` lines or a NUL byte is a `DatasetError`
    naming the file and line. Bytes that are not UTF-8 are kept as the file system would
    (surrogate escapes)."""
    try:
        with open(path, "rb") as f:
            for n in range(1, MAX_LIST_LINES + 2):
                raw = f.readline(MAX_LIST_LINE + 1)
                if not raw:
                    return
                if n > MAX_LIST_LINES:
                    raise DatasetError(f"{printable(path)}: more than {MAX_LIST_LINES:,} lines "
                                       f"(the limit of a list file)")
                if len(raw.rstrip(b"\r\n")) > MAX_LIST_LINE:
                    raise DatasetError(f"{printable(path)}:{n}: line longer than "
                                       f"{MAX_LIST_LINE} bytes (the limit of a list line)")
                if b"\0" in raw:
                    raise DatasetError(f"{printable(path)}:{n}: NUL byte in the line")
                yield n, raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
    except OSError as e:
        raise DatasetError(f"{printable(path)}: cannot read list file "
                           f"({printable(e.strerror or e)})") from None


def listed_path(list_file, n: int, text: str) -> PurePosixPath:
    """A path as listed, relative to the data root (a leading "/" is the root, as in the
    authors' VOC list); one that leaves the root (``..``) is a `DatasetError` naming the
    list file and line."""
    rel = PurePosixPath(text.lstrip("/"))
    if ".." in rel.parts or not rel.parts or rel == PurePosixPath("."):
        raise DatasetError(f"{printable(list_file)}:{n}: {printable(text)!r} leaves the data "
                           f"root (list paths are relative to --data-root, without '..')")
    return rel


def read_list(root: str | Path, list_file: str | Path) -> list[Sample]:
    """The authors' list format: 'image [label]' per line, relative to root (a leading "/"
    allowed, as in their VOC list). A sample's name (its outputs' path under an output
    folder) is the listed image path without its suffix (a training list may name an image
    twice; eval/run.py refuses two images with one name: `outputs.Writer.claim`)."""
    root = Path(root)
    out = []
    for n, line in list_lines(list_file):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise DatasetError(f"{printable(list_file)}:{n}: expected 'image [label]', got "
                               f"{printable(line)!r}")
        image = listed_path(list_file, n, parts[0])
        label = listed_path(list_file, n, parts[1]) if len(parts) == 2 else None
        out.append(Sample(image.with_suffix("").as_posix(), root / image,
                          None if label is None else root / label))
    return out
