"""One's own dataset, read from list files (``--list``, ``--num-classes``, ``--class-names``).

List files are the authors' format: ``image [label]`` per line, paths relative to the data
root (a leading "/" is allowed, as in their VOC list). Any dataset can be read through one
(its labels then follow that dataset's convention); one's own classes use the ``custom``
convention: labels are stored as the class ids 0..N-1, 255 = ignored, and predictions are
written as they are. Class names come from a file (one per line) or are ``class k``; colours
are the VOC colormap's first N.

Defaults for one's own data (the release's ADE20K / VOC settings): crop 473, base size 512,
the paper's augmentation with rotation and blur; no iteration count (the user gives --iters).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .base import (Dataset, DatasetError, EvalDefaults, Sample, TrainRecipe, frozen_palette,
                   voc_colormap)

NAME = "custom"
CROP_SIZE = 473
BASE_SIZE = 512


class ListFile(Dataset):
    """Classes given at run time (`with_classes`); files only through list files."""

    def with_classes(self, names) -> "ListFile":
        """This dataset with these class names (and the first len(names) colours)."""
        names = tuple(names)
        return replace(self, classes=names, palette=frozen_palette(self.palette[:len(names)]))


def read_list(root: str | Path, list_file: str | Path) -> list[Sample]:
    """The authors' list format: 'image [label]' per line, relative to root."""
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


def read_class_names(path: str | Path, num_classes: int) -> list[str]:
    """One class name per non-blank line; exactly ``num_classes`` of them."""
    names = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    if len(names) != num_classes:
        raise DatasetError(f"{path}: {len(names)} class names, --num-classes is {num_classes}")
    return names


def default_class_names(num_classes: int) -> list[str]:
    return [f"class {k}" for k in range(num_classes)]


DATASET = ListFile(
    name=NAME,
    title="one's own dataset (list files)",
    classes=(),
    palette=frozen_palette(voc_colormap(256)),
    label_ids=256,
    splits={},
    train_split=None,
    eval=EvalDefaults(split="val", base_size=BASE_SIZE, crop_size=CROP_SIZE),
    train=TrainRecipe(NAME, iterations=None, crop_size=CROP_SIZE, rotate=True, blur=True),
    benchmark=False,
)
