"""``--image`` arguments -> image files, one output name per image, and an image as a path,
a PIL image or an array made the protocol's RGB uint8 (H, W, 3) (`as_rgb`).

An argument is a file, a folder (its images, not recursive) or a glob pattern (``*``, ``?``,
``[...]``, ``**``). Patterns are expanded here rather than by `glob.glob`, which follows
every symbolic link to a folder: a link ``up -> ..`` or ``self -> .`` under a ``**`` made it
walk for minutes. Here ``**`` never descends into a linked folder (a link to a file is an
ordinary match; a single ``*`` or a literal part may go through a link: the pattern's depth
bounds it), and the whole expansion stops with an error after `MAX_ENTRIES` folder entries.
As in `glob`, names starting with "." match only a pattern part starting with ".".
"""
from __future__ import annotations

import fnmatch
import glob
import os
from pathlib import Path

import numpy as np

from caffe_proto.printable import printable
from psp_torch.datasets import read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
MAX_ENTRIES = 1_000_000     # folder entries looked at while expanding all --image arguments


class InputError(ValueError):
    """An --image argument that cannot be expanded within the budget."""


class _Budget:
    def __init__(self, spec: str, limit: int):
        self.spec, self.left, self.limit = spec, limit, limit

    def entries(self, folder: Path):
        """The entries of `folder` (none if it cannot be read), each counted."""
        try:
            with os.scandir(folder) as it:
                for e in it:
                    self.left -= 1
                    if self.left < 0:
                        raise InputError(
                            f"{printable(self.spec)}: more than {self.limit:,} folder entries "
                            f"looked at (a pattern too wide for --image, or a folder of "
                            f"linked folders)")
                    yield e
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return


def _is_dir(e: os.DirEntry, follow: bool) -> bool:
    try:
        return e.is_dir(follow_symlinks=follow)
    except OSError:
        return False


def _is_file(e: os.DirEntry) -> bool:
    try:
        return e.is_file()
    except OSError:
        return False


def expand(spec: str, budget: _Budget) -> list[Path]:
    """The files a glob pattern matches (unsorted, possibly repeated)."""
    parts = Path(spec).parts
    first = next(i for i, p in enumerate(parts) if glob.has_magic(p))
    base = Path(*parts[:first]) if first else Path(".")
    rest = parts[first:]
    found: list[Path] = []

    def hidden(name: str, pattern: str) -> bool:
        return name.startswith(".") and not pattern.startswith(".")

    def walk(folder: Path, k: int) -> None:
        pattern, last = rest[k], k == len(rest) - 1
        if pattern == "**":
            if last:                                   # every file below, at any depth
                for e in budget.entries(folder):
                    if hidden(e.name, pattern):
                        continue
                    if _is_dir(e, follow=False):
                        walk(Path(e.path), k)
                    elif _is_file(e):
                        found.append(Path(e.path))
                return
            walk(folder, k + 1)                        # "**" as no folder at all
            for e in budget.entries(folder):
                if not hidden(e.name, pattern) and _is_dir(e, follow=False):
                    walk(Path(e.path), k)              # never into a linked folder
        elif glob.has_magic(pattern):
            for e in budget.entries(folder):
                if hidden(e.name, pattern) or not fnmatch.fnmatchcase(e.name, pattern):
                    continue
                if last and _is_file(e):
                    found.append(Path(e.path))
                elif not last and _is_dir(e, follow=True):
                    walk(Path(e.path), k + 1)
        else:
            p = folder / pattern
            if last and p.is_file():
                found.append(p)
            elif not last and p.is_dir():
                walk(p, k + 1)

    if base.is_dir():
        walk(base, 0)
    return found


def image_paths(specs, max_entries: int = MAX_ENTRIES) -> list[Path]:
    """--image arguments -> image files: a file as is, a folder -> its images (sorted, not
    recursive), a glob pattern -> its matches (sorted). The same file named twice counts
    once. Raises FileNotFoundError naming what matched nothing, `InputError` past the budget
    of folder entries."""
    paths, seen = [], set()

    def add(p: Path):
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            paths.append(p)
    left = max_entries
    for spec in map(str, specs):
        p = Path(spec)
        budget = _Budget(spec, left)
        if p.is_dir():
            found = sorted(Path(e.path) for e in budget.entries(p)
                           if _is_file(e) and Path(e.name).suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(2, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this "
                                           f"folder", printable(spec))
        elif p.is_file():
            found = [p]
        elif glob.has_magic(spec):
            found = sorted(set(expand(spec, budget)))
            if not found:
                raise FileNotFoundError(2, "no file matches this pattern", printable(spec))
        else:
            raise FileNotFoundError(2, "no such image, folder or pattern", printable(spec))
        left = max(budget.left, 0)
        for q in found:
            add(q)
    return paths


def output_names(paths: list[Path]) -> list[str]:
    """One distinct output name per image: its stem where stems are unique; else its path
    relative to the inputs' common folder without the suffix (outputs in subfolders); else
    with it (x.jpg and x.png side by side). Names that would still name one file (on a file
    system that ignores case, too) are an `InputError` naming both images."""
    stems = [p.stem for p in paths]
    if len({s.casefold() for s in stems}) == len(stems):
        return stems
    absolute = [p.resolve() for p in paths]
    common = Path(os.path.commonpath([str(a.parent) for a in absolute]))
    rel = [a.relative_to(common) for a in absolute]
    names = [r.with_suffix("").as_posix() for r in rel]
    if len({n.casefold() for n in names}) != len(names):
        names = [r.as_posix() for r in rel]
    first: dict[str, Path] = {}
    for p, n in zip(paths, names):
        other = first.setdefault(n.casefold(), p)
        if other is not p:
            raise InputError(f"{printable(p)}: its outputs would be those of {printable(other)} "
                             f"({printable(n)}.png); give one of them alone")
    return names


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
