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

from .base import Dataset, DatasetError, EvalDefaults, TrainRecipe, frozen_palette, voc_colormap
from .files import list_lines, read_list  # noqa: F401  (the list format: files.py)



class ListFile(Dataset):
    """Classes given at run time (`with_classes`); files only through list files."""

    def with_classes(self, names) -> "ListFile":
        """This dataset with these class names (and the first len(names) colours)."""
        names = tuple(names)
        return replace(self, classes=names, palette=frozen_palette(self.palette[:len(names)]))


def read_class_names(path: str | Path, num_classes: int) -> list[str]:
    """One class name per non-blank line; exactly ``num_classes`` of them (read with the list
    files' budgets: `files.list_lines`)."""
    names = []
    for _, line in list_lines(path):
        if line.strip():
            names.append(line.strip())
            if len(names) > num_classes:
                break
    if len(names) != num_classes:
        many = f"more than {num_classes}" if len(names) > num_classes else len(names)
        raise DatasetError(f"{path}: {many} class names, --num-classes is {num_classes}")
    return names


def default_class_names(num_classes: int) -> list[str]:
    return [f"class {k}" for k in range(num_classes)]


DATASET = ListFile(
    name="custom",
    title="one's own dataset (list files)",
    classes=(),
    palette=frozen_palette(voc_colormap(256)),
    label_ids=256,
    splits={},
    train_split=None,
    crop_size=473,
    eval=EvalDefaults(split="val", base_size=512),
    train=TrainRecipe(iterations=None, rotate=True, blur=True),
    benchmark=False,
)
