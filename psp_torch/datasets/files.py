"""Reading a dataset's files: images as RGB uint8, label PNGs as their stored values, the
authors' list files, and the check that every listed file is there before a run starts.

Images are read as RGB uint8; grey images are replicated to 3 channels; EXIF orientation is
ignored (as MATLAB's imread does). Label PNGs are read with Pillow, which returns the palette
indices of a palette PNG (OpenCV would return the palette colours).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image



class DatasetError(ValueError):
    """A dataset file is missing, unreadable or holds values outside the convention."""


@dataclass(frozen=True)
class Sample:
    name: str                   # output file stem
    image: Path
    label: Path | None = None
    instances: Path | None = None   # instance map beside the label (may be absent on disk)


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3); grey replicated to 3 channels."""
    data = np.fromfile(str(path), np.uint8) if Path(path).is_file() else None
    img = None if data is None or data.size == 0 else cv2.imdecode(
        data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise DatasetError(f"{path}: cannot read image")
    return np.ascontiguousarray(img[:, :, ::-1])


def read_png_values(path: str | Path) -> np.ndarray:
    """The stored values of a single-channel PNG (palette indices for palette PNGs)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "I;16", "I", "1"):
                raise DatasetError(f"{path}: label PNG must be single-channel, got mode {im.mode}")
            a = np.array(im)
    except (OSError, SyntaxError) as e:
        raise DatasetError(f"{path}: cannot read label ({e})") from e
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


def read_list(root: str | Path, list_file: str | Path) -> list[Sample]:
    """The authors' list format: 'image [label]' per line, relative to root (a leading "/"
    allowed, as in their VOC list)."""
    root = Path(root)
    out = []
    for n, line in enumerate(Path(list_file).read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) > 2:
            raise DatasetError(f"{list_file}:{n}: expected 'image [label]', got {line!r}")
        image = root / parts[0].lstrip("/")
        label = root / parts[1].lstrip("/") if len(parts) == 2 else None
        out.append(Sample(image.stem, image, label))
    return out
