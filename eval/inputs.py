"""What a user hands the segmenter: image files, folders and glob patterns (`image_paths`),
one distinct output name per file (`output_names`), and an image as a path, a PIL image or an
array, made the protocol's RGB uint8 (H, W, 3) (`as_rgb`)."""
from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from psp_torch.datasets import read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def image_paths(specs) -> list[Path]:
    """--image arguments -> image files: a file as is, a folder -> its images (sorted, not
    recursive), a glob pattern (``*``, ``?``, ``[``, ``**``) -> its matches (sorted). The same
    file named twice counts once. Raises FileNotFoundError naming what matched nothing."""
    paths, seen = [], set()

    def add(p: Path):
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            paths.append(p)
    for spec in map(str, specs):
        p = Path(spec)
        if p.is_dir():
            found = sorted(q for q in p.iterdir()
                           if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(2, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this "
                                           f"folder", spec)
        elif p.is_file():
            found = [p]
        elif glob.has_magic(spec):
            found = sorted(Path(q) for q in glob.glob(spec, recursive=True) if Path(q).is_file())
            if not found:
                raise FileNotFoundError(2, "no file matches this pattern", spec)
        else:
            raise FileNotFoundError(2, "no such image, folder or pattern", spec)
        for q in found:
            add(q)
    return paths


def output_names(paths: list[Path]) -> list[str]:
    """One distinct output name per image: its stem where stems are unique; else its path
    relative to the inputs' common folder without the suffix (outputs in subfolders); else
    with it (x.jpg and x.png side by side)."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    absolute = [p.resolve() for p in paths]
    common = Path(os.path.commonpath([str(a.parent) for a in absolute]))
    rel = [a.relative_to(common) for a in absolute]
    names = [r.with_suffix("").as_posix() for r in rel]
    if len(set(names)) == len(names):
        return names
    return [r.as_posix() for r in rel]


def as_rgb(image) -> np.ndarray:
    """A path (read as the datasets read images: EXIF orientation ignored), a PIL image or an
    (H, W, 3) uint8 RGB array -> RGB uint8 (H, W, 3), C-contiguous. Grey (H, W) is replicated to
    three channels and an alpha channel dropped, as `psp_torch.preprocess` does. Anything else
    is a ValueError naming what it got."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if hasattr(image, "convert") and hasattr(image, "mode"):      # a PIL image
        return np.array(image.convert("RGB"))         # a writable copy
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"image: expected RGB uint8 (H, W, 3), got dtype {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"image: expected RGB uint8 (H, W, 3), got shape {a.shape}")
    return np.ascontiguousarray(a[:, :, :3])
