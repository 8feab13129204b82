"""The benchmarks in their own folder layouts, and their label conventions.

Labels are returned in the network's class ids: 0..C-1, 255 = ignored.

- VOC 2012: ``ImageSets/Segmentation/<split>.txt``, ``JPEGImages/<id>.jpg``,
  ``SegmentationClass/<id>.png`` (palette PNG: the pixel values are palette indices 0..20,
  255 = void border). Read with Pillow, which returns the indices (OpenCV would return the
  palette colours). Training split ``train_aug`` (the 10,582 images of VOC train + SBD minus
  VOC val): ids from ``ImageSets/Segmentation/train_aug.txt`` (or ``ImageSets/SegmentationAug/``),
  labels ``SegmentationClassAug/<id>.png`` (grey PNGs holding the ids 0..20 / 255).
- ADE20K (ADEChallengeData2016): ``images/validation/*.jpg``, ``annotations/validation/*.png``
  (training: ``training``); 0 ("other") -> 255, k -> k - 1.
- Cityscapes: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png``; labels
  ``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png`` when present (used as they are), else
  ``*_gtFine_labelIds.png`` mapped with the official id -> trainId table. Instances (for the
  iIoU scores) from ``*_gtFine_instanceIds.png`` beside the label: values above 1000 are
  ``labelId * 1000 + instance number``; instances of classes ignored in evaluation (caravan,
  trailer) are dropped, as the official script does. A missing instance file is allowed: the
  run then reports no iIoU and says why.
- The authors' list files (``--list``): ``image [label]`` per line, paths relative to the
  data root (a leading "/" is allowed, as in their VOC list); labels follow the dataset's
  convention above, or ``custom`` (one's own classes): the stored values are the class ids
  0..N-1, 255 = ignored.

Images are read as RGB uint8; grey images are replicated to 3 channels; EXIF orientation is
ignored (as MATLAB's imread does).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from .metrics import INSTANCE_KEY, InstanceScheme

DATASETS = ("voc", "ade20k", "cityscapes")
CUSTOM = "custom"           # label convention of one's own list-file datasets: values as stored

# Image counts of the full splits (a smaller set gets no PASS/FAIL verdict).
SPLIT_SIZES = {("voc", "val"): 1449, ("voc", "test"): 1456, ("ade20k", "val"): 2000,
               ("cityscapes", "val"): 500, ("cityscapes", "test"): 1525,
               ("voc", "train_aug"): 10582, ("ade20k", "training"): 20210,
               ("cityscapes", "train"): 2975}
# The training split of each benchmark (the paper's training sets).
TRAIN_SPLITS = {"voc": "train_aug", "ade20k": "training", "cityscapes": "train"}

# Official Cityscapes labelId -> trainId (every other id -> 255).
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
                        23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
IGNORE = 255


def _lut(pairs: dict[int, int]) -> np.ndarray:
    lut = np.full(256, IGNORE, np.uint8)
    for k, v in pairs.items():
        lut[k] = v
    return lut


CITYSCAPES_LUT = _lut(CITYSCAPES_TRAIN_IDS)
ADE20K_LUT = _lut({k: k - 1 for k in range(1, 151)})

# The Cityscapes benchmark's categories (labels.py, void left out: it has no evaluated class)
# and the average instance size per class (evalPixelLevelSemanticLabeling.py, args.avgClassSize;
# caravan and trailer are ignored in evaluation), in trainIds.
CITYSCAPES_SCHEME = InstanceScheme(
    categories=(("flat", (0, 1)), ("construction", (2, 3, 4)), ("object", (5, 6, 7)),
                ("nature", (8, 9)), ("sky", (10,)), ("human", (11, 12)),
                ("vehicle", (13, 14, 15, 16, 17, 18))),
    avg_size={11: 3462.4756337644, 12: 3930.4788056518, 13: 12794.0202738185,
              14: 27855.1264367816, 15: 35732.1511111111, 16: 67583.7075812274,
              17: 6298.7200839748, 18: 4672.3249222261})


@dataclass(frozen=True)
class Sample:
    name: str                   # output file stem
    image: Path
    label: Path | None = None
    instances: Path | None = None   # Cityscapes gtFine_instanceIds (may be absent on disk)


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or holds values outside the convention."""


# ---------------------------------------------------------------- layouts

def _find_root(root: Path, marker: str, candidates: tuple[str, ...]) -> Path:
    for c in ("",) + candidates:
        if (root / c / marker).exists():
            return root / c
    raise DatasetError(f"{root}: no {marker!r} found here or in {', '.join(candidates)}")


def voc_samples(root: str | Path, split: str = "val") -> list[Sample]:
    root = _find_root(Path(root), "ImageSets/Segmentation",
                      ("VOC2012", "VOCdevkit/VOC2012"))
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if split == "train_aug" and not listing.exists():
        listing = root / "ImageSets" / "SegmentationAug" / f"{split}.txt"
    if not listing.exists():
        raise DatasetError(f"{listing}: split list missing")
    # an id per line, or the authors' 'image label' pairs (the id is the image's stem)
    ids = [Path(ln.split()[0]).stem for ln in listing.read_text().splitlines() if ln.strip()]
    with_labels = split != "test"
    labels = "SegmentationClassAug" if split == "train_aug" else "SegmentationClass"
    return [Sample(i, root / "JPEGImages" / f"{i}.jpg",
                   root / labels / f"{i}.png" if with_labels else None)
            for i in ids]


def ade20k_samples(root: str | Path, split: str = "val") -> list[Sample]:
    root = _find_root(Path(root), "images", ("ADEChallengeData2016",))
    sub = {"val": "validation", "train": "training"}.get(split, split)
    images = sorted((root / "images" / sub).glob("*.jpg"))
    if not images:
        raise DatasetError(f"{root / 'images' / sub}: no .jpg images")
    return [Sample(p.stem, p, root / "annotations" / sub / f"{p.stem}.png") for p in images]


def cityscapes_samples(root: str | Path, split: str = "val") -> list[Sample]:
    root = _find_root(Path(root), "leftImg8bit", ("cityscapes",))
    images = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
    if not images:
        raise DatasetError(f"{root / 'leftImg8bit' / split}: no *_leftImg8bit.png images")
    out = []
    for p in images:
        stem = p.name[: -len("_leftImg8bit.png")]
        label = None
        if split != "test":
            gt = root / "gtFine" / split / p.parent.name
            label = gt / f"{stem}_gtFine_labelTrainIds.png"
            if not label.exists():
                label = gt / f"{stem}_gtFine_labelIds.png"
        out.append(Sample(p.name[: -len(".png")], p, label, cityscapes_instance_path(label)))
    return out


def cityscapes_instance_path(label: Path | None) -> Path | None:
    """The gtFine_instanceIds file beside a gtFine label file (None for other names)."""
    if label is None:
        return None
    for kind in ("_gtFine_labelTrainIds.png", "_gtFine_labelIds.png"):
        if label.name.endswith(kind):
            return label.with_name(label.name[: -len(kind)] + "_gtFine_instanceIds.png")
    return None


def list_samples(root: str | Path, list_file: str | Path) -> list[Sample]:
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


def samples(dataset: str, root: str | Path, split: str = "val",
            list_file: str | Path | None = None) -> list[Sample]:
    if list_file is not None:
        items = list_samples(root, list_file)
        if dataset == "cityscapes":
            items = [replace(s, instances=cityscapes_instance_path(s.label)) for s in items]
        return items
    readers = {"voc": voc_samples, "ade20k": ade20k_samples, "cityscapes": cityscapes_samples}
    if dataset not in readers:
        raise DatasetError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    return readers[dataset](root, split)


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


# ---------------------------------------------------------------- readers

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
    from PIL import Image
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "I;16", "I", "1"):
                raise DatasetError(f"{path}: label PNG must be single-channel, got mode {im.mode}")
            a = np.array(im)
    except (OSError, SyntaxError) as e:
        raise DatasetError(f"{path}: cannot read label ({e})") from e
    return a


def decode_label(values: np.ndarray, dataset: str, path: str | Path = "<label>") -> np.ndarray:
    """Stored label values -> class ids 0..C-1 / 255 (uint8), checked."""
    if values.ndim != 2:
        raise DatasetError(f"{path}: label must be 2-D, got shape {values.shape}")
    if values.max(initial=0) > 255:
        raise DatasetError(f"{path}: label values above 255")
    v = values.astype(np.uint8)
    if dataset == "ade20k":
        return ADE20K_LUT[v]
    if dataset == "cityscapes":
        return v if "labelTrainIds" in Path(path).name else CITYSCAPES_LUT[v]
    if dataset in ("voc", CUSTOM):
        return v
    raise DatasetError(f"unknown dataset {dataset!r}")


def read_label(path: str | Path, dataset: str, num_classes: int) -> np.ndarray:
    lab = decode_label(read_png_values(path), dataset, path)
    bad = np.unique(lab[(lab >= num_classes) & (lab != IGNORE)])
    if bad.size:
        raise DatasetError(f"{path}: label values {bad.tolist()[:10]} outside 0..{num_classes - 1} "
                           f"and 255 (after the {dataset} convention)")
    return lab


def read_instances(path: str | Path, dataset: str, shape: tuple) -> np.ndarray:
    """gtFine_instanceIds -> (H, W) int32: trainId * 1000 + instance number, -1 elsewhere
    (the official script's ``instanceIds > 1000``, classes ignored in evaluation dropped)."""
    if dataset != "cityscapes":
        raise DatasetError(f"{path}: instance maps are read for cityscapes only")
    raw = read_png_values(path)
    if raw.shape != tuple(shape):
        raise DatasetError(f"{path}: instance map is {raw.shape[0]}x{raw.shape[1]}, its label "
                           f"is {shape[0]}x{shape[1]}")
    return decode_cityscapes_instances(raw)


def decode_cityscapes_instances(raw: np.ndarray) -> np.ndarray:
    """instanceIds values -> trainId * 1000 + instance number where the value is above 1000
    and its labelId (value // 1000) is evaluated; -1 elsewhere."""
    raw = raw.astype(np.int64)
    label_id = raw // 1000
    train_id = np.where(label_id < 256, CITYSCAPES_LUT[np.clip(label_id, 0, 255)], IGNORE)
    keep = (raw > 1000) & (train_id != IGNORE)
    return np.where(keep, train_id.astype(np.int64) * INSTANCE_KEY + raw % 1000,
                    -1).astype(np.int32)


def read_ground_truth(sample: Sample, dataset: str, num_classes: int):
    """(label, instances or None): instances when the sample names an existing instance file."""
    lab = read_label(sample.label, dataset, num_classes)
    inst = None
    if sample.instances is not None and Path(sample.instances).is_file():
        inst = read_instances(sample.instances, dataset, lab.shape)
    return lab, inst


# ---------------------------------------------------------------- output ids

def to_dataset_ids(pred: np.ndarray, dataset: str) -> np.ndarray:
    """Class ids 0..C-1 -> the ids the dataset's own files use: VOC 0..20, ADE20K 1..150,
    Cityscapes labelIds (7..33, the official benchmark's format)."""
    if dataset == "ade20k":
        return (pred + 1).astype(np.uint8)
    if dataset == "cityscapes":
        inv = np.zeros(256, np.uint8)
        for k, v in CITYSCAPES_TRAIN_IDS.items():
            inv[v] = k
        return inv[pred]
    return pred.astype(np.uint8)


def from_dataset_ids(ids: np.ndarray, dataset: str) -> np.ndarray:
    """Inverse of to_dataset_ids (used by --resume). Ids that name no class (ADE20K 0 "other",
    Cityscapes void ids) become 255: they score as misses, as the official tools count them."""
    if dataset == "ade20k":
        ids = ids.astype(np.int64)
        return np.where(ids == 0, IGNORE, ids - 1)
    if dataset == "cityscapes":
        return CITYSCAPES_LUT[ids].astype(np.int64)
    return ids.astype(np.int64)
