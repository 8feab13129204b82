"""The benchmarks' files and label conventions, by dataset name: the entry eval/ and train/
use. Every fact lives in its dataset's module, `psp_torch.datasets.<module>` (voc2012, ade20k,
cityscapes; listfile for one's own list datasets); this module dispatches on the name and
keeps the names it has always exported (for one release).

Labels are returned in the network's class ids: 0..C-1, 255 = ignored. The conventions (each
module's docstring has the details):
- VOC 2012: palette PNGs holding 0..20 / 255 (void border), read as stored.
- ADE20K: 0 ("other") -> 255, k -> k - 1.
- Cityscapes: labelTrainIds as stored, else labelIds through the official id -> trainId
  table; gtFine_instanceIds beside the label for the iIoU scores.
- ``custom`` (one's own classes, list files): the stored values are the class ids 0..N-1.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from psp_torch.datasets import (IGNORE, DatasetError, Sample, get, missing_files,  # noqa: F401
                                names, read_image, read_png_values, registry)
from psp_torch.datasets import ade20k as _ade20k
from psp_torch.datasets import cityscapes as _cityscapes
from psp_torch.datasets import listfile as _listfile
from psp_torch.datasets import voc2012 as _voc2012
from psp_torch.datasets.base import find_root as _find_root  # noqa: F401
from psp_torch.datasets.files import MAX_PIXELS, image_size  # noqa: F401
from psp_torch.datasets.listfile import read_class_names  # noqa: F401

DATASETS = names()                  # the benchmarks (--dataset choices)
CUSTOM = _listfile.NAME             # label convention of one's own list-file datasets

# Image counts of the full splits (a smaller set gets no PASS/FAIL verdict).
SPLIT_SIZES = {(d.name, s): split.images for d in registry().values()
               for s, split in d.splits.items() if split.images is not None}
# The training split of each benchmark (the paper's training sets).
TRAIN_SPLITS = {n: get(n).train_split for n in DATASETS}

# Kept names of the Cityscapes and ADE20K tables (their home: the dataset modules).
CITYSCAPES_TRAIN_IDS = _cityscapes.TRAIN_IDS
CITYSCAPES_LUT = _cityscapes.LUT
CITYSCAPES_SCHEME = _cityscapes.SCHEME
ADE20K_LUT = _ade20k.LUT


# ---------------------------------------------------------------- layouts

def voc_samples(root: str | Path, split: str = "val") -> list[Sample]:
    return _voc2012.DATASET.samples(root, split)


def ade20k_samples(root: str | Path, split: str = "val") -> list[Sample]:
    return _ade20k.DATASET.samples(root, split)


def cityscapes_samples(root: str | Path, split: str = "val") -> list[Sample]:
    return _cityscapes.DATASET.samples(root, split)


def cityscapes_instance_path(label: Path | None) -> Path | None:
    """The gtFine_instanceIds file beside a gtFine label file (None for other names)."""
    return _cityscapes.DATASET.instance_path(label)


list_samples = _listfile.read_list


def samples(dataset: str, root: str | Path, split: str = "val",
            list_file: str | Path | None = None) -> list[Sample]:
    """A split in the dataset's own layout, or the samples of a list file (with the
    dataset's instance maps beside the listed labels, where it has them)."""
    d = get(dataset)
    return d.samples(root, split) if list_file is None else d.list_samples(root, list_file)


# ---------------------------------------------------------------- readers

def decode_label(values: np.ndarray, dataset: str, path: str | Path = "<label>") -> np.ndarray:
    """Stored label values -> class ids 0..C-1 / 255 (uint8), checked."""
    return get(dataset).decode_label(values, path)


def read_label(path: str | Path, dataset: str, num_classes: int,
               max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    return get(dataset).read_label(path, num_classes, max_pixels)


def read_instances(path: str | Path, dataset: str, shape: tuple) -> np.ndarray:
    return get(dataset).read_instances(path, shape)


def decode_cityscapes_instances(raw: np.ndarray) -> np.ndarray:
    """instanceIds values -> trainId * 1000 + instance number (see the cityscapes module)."""
    return _cityscapes.DATASET.decode_instances(raw)


def read_ground_truth(sample: Sample, dataset: str, num_classes: int,
                      max_pixels: int | None = MAX_PIXELS):
    """(label, instances or None): instances when the sample names an existing instance file."""
    return get(dataset).read_ground_truth(sample, num_classes, max_pixels)


# ---------------------------------------------------------------- output ids

def to_dataset_ids(pred: np.ndarray, dataset: str) -> np.ndarray:
    """Class ids 0..C-1 -> the ids the dataset's own files use: VOC 0..20, ADE20K 1..150,
    Cityscapes labelIds (7..33, the official benchmark's format)."""
    return get(dataset).to_dataset_ids(pred)


def from_dataset_ids(ids: np.ndarray, dataset: str) -> np.ndarray:
    """Inverse of to_dataset_ids (used by --resume). Ids that name no class (ADE20K 0 "other",
    Cityscapes void ids) become 255: they score as misses, as the official tools count them."""
    return get(dataset).from_dataset_ids(ids)
