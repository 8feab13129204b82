"""The interface every dataset module fills in: `Dataset`, one frozen object per benchmark
(or per kind of dataset) declaring all of its facts.

A dataset module of this package (``voc2012.py``, ``ade20k.py``, ...) defines a module-level
``DATASET``: an instance of `Dataset` (or of a subclass that overrides the file layout and
the label codec). `psp_torch.datasets.registry` finds every such module; adding a dataset is
adding one file.

Facts, by field:
- ``name``: the key (``--dataset``, a model's ``meta["dataset"]``); ``title``: for people.
- ``classes``, ``palette``: class names in the network's output order and an RGB uint8
  (K, 3) colour table (read-only). One's own datasets name their classes at run time.
- ``label_ids``: the dataset's own files hold ids 0..label_ids-1 (label PNGs, prediction
  PNGs): VOC 21, ADE20K 151 (0 = "other"), Cityscapes 34 (labelIds).
- ``splits``: split name -> `Split` (full image count, labelled or not, submission folder);
  ``train_split``: the split the paper trains on.
- ``crop_size``: the side of the network's input: the training crop, the deploy input and
  the evaluation window (the released models' fixed input).
- ``eval``: `EvalDefaults` (base size, multi-scale set, window stride rate, the split and
  the published numbers the report checks against).
- ``train``: `TrainRecipe` (paper section 5.1: iterations, batch, lr, augmentation).
- ``instances``: `InstanceScheme` for instance-weighted scores (Cityscapes iIoU), or None.
- ``label_png_palette``: predictions are written as palette PNGs with this colour table
  (VOC's own format) or grey (None).

Behaviour (methods a module may override): `samples` (file layout), `decode_values` (stored
label values -> class ids 0..C-1, 255 = ignored), `to_dataset_ids` / `from_dataset_ids`
(class ids <-> the ids of the dataset's own files), `instance_path` / `decode_instances`.

Reading (`read_label`, `read_instances`, `read_ground_truth`) checks sizes and ranges on
top of the codec; the file readers themselves are `psp_torch.datasets.files`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from .files import MAX_PIXELS, DatasetError, Sample, read_list, read_png_values  # noqa: F401

IGNORE = 255            # label value of ignored pixels, in every convention here
INSTANCE_KEY = 1000     # instance maps: class * 1000 + instance number, -1 = no instance

# The authors' evaluation protocol (evaluation/eval_all.m, scale_process.m): the same for
# every benchmark they published; a dataset module may declare others.
MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
STRIDE_RATE = 2 / 3                 # sliding-window stride = ceil(crop * 2/3) (MATLAB's
                                    # double arithmetic; exact for every crop below 10^5)

# The paper's augmentation (section 5.1; ranges and kernel as in the authors' PyTorch code).
SCALE_RANGE = (0.5, 2.0)
ROTATE_RANGE = (-10.0, 10.0)
BLUR_KERNEL = 5


@dataclass(frozen=True)
class Published:
    """A published (mIoU, pixel accuracy) pair in percent; None where not published."""
    miou: float
    pixel_acc: float | None = None


@dataclass(frozen=True)
class Split:
    """One split: its full image count (None: not fixed), whether its labels are public, and
    where an official server wants the predictions of an unlabelled split (a folder under the
    output folder, None: predictions stay in labels/)."""
    images: int | None
    labelled: bool = True
    submission: str | None = None


@dataclass(frozen=True)
class EvalDefaults:
    """Evaluation defaults: the authors' protocol and what the report compares against (the
    window side is the dataset's ``crop_size``)."""
    split: str                          # default --split: the published numbers' split
    base_size: int                      # long side at scale 1 is base_size + 1
    ms_scales: tuple = MS_SCALES        # --ms
    stride_rate: float = STRIDE_RATE     # window stride = ceil(crop * stride_rate)
    published_ss: Published | None = None   # single scale, on `split`
    published_ms: Published | None = None   # multi-scale (ms_scales), on `split`


@dataclass(frozen=True)
class TrainRecipe:
    """The paper's recipe (section 5.1, section 4) for one dataset.

    Sources: iterations, crop, batch, lr, poly power, momentum, weight decay, aux weight,
    scale and rotation ranges, blur: paper section 5.1 / 4 (rotation and Gaussian blur "for
    ImageNet [= ADE20K, the ImageNet scene parsing challenge] and PASCAL VOC", so off for
    Cityscapes). The release's layer settings (lr multipliers, BN momentum, dropout) are the
    model's: `psp_torch.presets`; the crop is the dataset's ``crop_size``.
    """
    iterations: int | None              # None: one's own dataset (the user gives --iters)
    rotate: bool
    blur: bool
    base_lr: float = 0.01
    power: float = 0.9
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 16
    aux_weight: float = 0.4
    scale_range: tuple = SCALE_RANGE
    rotate_range: tuple = ROTATE_RANGE
    blur_kernel: int = BLUR_KERNEL
    ignore_label: int = IGNORE


@dataclass(frozen=True)
class InstanceScheme:
    """How a dataset groups classes into categories and weights instances (Cityscapes).
    ``name`` names the official evaluation whose scores it reproduces (the results.json
    section holding them); ``files`` what its instance maps are called (for messages)."""
    name: str
    files: str
    categories: tuple            # ((name, (class ids...)), ...) in report order
    avg_size: dict               # class id -> average instance size in pixels (classes with
                                 # instances; the others have no iIoU)

    def category_of(self, num_classes: int) -> np.ndarray:
        """(256,) int64: the category index of each class id, -1 for none (255 included)."""
        cat = np.full(256, -1, np.int64)
        for k, (_, ids) in enumerate(self.categories):
            cat[list(ids)] = k
        return cat

    def instance_categories(self) -> list[int]:
        """Categories all of whose classes have instances (the only ones with an iIoU)."""
        return [k for k, (_, ids) in enumerate(self.categories)
                if all(c in self.avg_size for c in ids)]


def lut(pairs: Mapping[int, int]) -> np.ndarray:
    """(256,) uint8 table: pairs as given, every other value -> 255."""
    table = np.full(256, IGNORE, np.uint8)
    for k, v in pairs.items():
        table[k] = v
    table.setflags(write=False)
    return table


def frozen_palette(rows) -> np.ndarray:
    p = np.array(rows, np.uint8).reshape(-1, 3)
    p.setflags(write=False)
    return p


def voc_colormap(n: int = 256) -> np.ndarray:
    """The VOC devkit colormap: bits 0, 1, 2 of the index go to the top bits of R, G, B,
    bits 3, 4, 5 to the next ones, and so on (uint8 (n, 3), RGB). Also the colours of one's
    own classes."""
    cmap = np.zeros((n, 3), np.uint8)
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    return cmap


def find_root(root: Path, marker: str, candidates: tuple[str, ...]) -> Path:
    """``root`` or the first of its subfolders ``candidates`` holding ``marker``."""
    for c in ("",) + candidates:
        if (root / c / marker).exists():
            return root / c
    raise DatasetError(f"{root}: no {marker!r} found here or in {', '.join(candidates)}")


@dataclass(frozen=True)
class Dataset:
    """All facts of one dataset (see the module docstring). Subclasses override the methods,
    never add fields: every dataset answers the same questions."""
    name: str
    title: str
    classes: tuple
    palette: np.ndarray
    label_ids: int
    splits: Mapping[str, Split]
    train_split: str | None
    crop_size: int                      # training crop = deploy input = evaluation window
    eval: EvalDefaults
    train: TrainRecipe
    instances: InstanceScheme | None = None
    label_png_palette: np.ndarray | None = field(default=None, repr=False)
    benchmark: bool = True              # False: read through list files only (one's own)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ------------------------------------------------------------ splits and files

    def split(self, name: str) -> Split:
        """The declared split, or an unknown-size labelled one (any list the layout has)."""
        return self.splits.get(name, Split(None))

    def samples(self, root: str | Path, split: str) -> list[Sample]:
        """The split's (image, label) files in the dataset's own folder layout."""
        raise DatasetError(f"{root}: {self.name} has no folder layout of its own; give a list "
                           f"file (--list)")

    def instance_path(self, label: Path | None) -> Path | None:
        """The instance map beside a label file (None: the dataset has none)."""
        return None

    def list_samples(self, root: str | Path, list_file: str | Path) -> list[Sample]:
        """The samples of an authors' list file, with this dataset's instance maps beside
        the listed labels (where it has them)."""
        return [replace(s, instances=self.instance_path(s.label))
                for s in read_list(root, list_file)]

    # ------------------------------------------------------------ label codec

    def decode_values(self, values: np.ndarray, path: Path) -> np.ndarray:
        """Stored label values (uint8) -> class ids 0..C-1 / 255. Default: as stored."""
        return values

    def decode_label(self, values: np.ndarray, path: str | Path = "<label>") -> np.ndarray:
        """Stored label values -> class ids 0..C-1 / 255 (uint8), shape and range checked."""
        if values.ndim != 2:
            raise DatasetError(f"{path}: label must be 2-D, got shape {values.shape}")
        if values.max(initial=0) > 255:
            raise DatasetError(f"{path}: label values above 255")
        return self.decode_values(values.astype(np.uint8), Path(path))

    def to_dataset_ids(self, pred: np.ndarray) -> np.ndarray:
        """Class ids 0..C-1 -> the ids the dataset's own files use (uint8)."""
        return pred.astype(np.uint8)

    def from_dataset_ids(self, ids: np.ndarray) -> np.ndarray:
        """Inverse of to_dataset_ids (int64); ids naming no class -> 255."""
        return ids.astype(np.int64)

    def decode_instances(self, raw: np.ndarray) -> np.ndarray:
        """Stored instance map -> (H, W) int32: class * INSTANCE_KEY + instance, -1 elsewhere."""
        raise DatasetError(f"{self.name} has no instance maps")

    # ------------------------------------------------------------ reading, checked

    def read_label(self, path: str | Path, num_classes: int,
                   max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
        """A label file -> class ids (uint8); values outside 0..num_classes-1 and 255 after
        the convention are an error naming the file; above `max_pixels` it is not decoded."""
        lab = self.decode_label(read_png_values(path, max_pixels), path)
        bad = np.unique(lab[(lab >= num_classes) & (lab != IGNORE)])
        if bad.size:
            raise DatasetError(f"{path}: label values {bad.tolist()[:10]} outside "
                               f"0..{num_classes - 1} and 255 (after the {self.name} convention)")
        return lab

    def read_instances(self, path: str | Path, shape: tuple,
                       max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
        """An instance map (of the label's size) -> `decode_instances`."""
        if self.instances is None:
            raise DatasetError(f"{path}: {self.name} has no instance maps")
        raw = read_png_values(path, max_pixels)
        if raw.shape != tuple(shape):
            raise DatasetError(f"{path}: instance map is {raw.shape[0]}x{raw.shape[1]}, its "
                               f"label is {shape[0]}x{shape[1]}")
        return self.decode_instances(raw)

    def read_ground_truth(self, sample: Sample, num_classes: int,
                          max_pixels: int | None = MAX_PIXELS):
        """(label, instances or None): instances when the sample names an existing file."""
        lab = self.read_label(sample.label, num_classes, max_pixels)
        inst = None
        if sample.instances is not None and Path(sample.instances).is_file():
            inst = self.read_instances(sample.instances, lab.shape, max_pixels)
        return lab, inst

