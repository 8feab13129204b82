"""Cityscapes (fine annotations): the 19 evaluated classes, in trainId order.

Layout: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png``; labels
``gtFine/<split>/<city>/*_gtFine_labelTrainIds.png`` when present (used as they are: 0..18,
255 ignore), else ``*_gtFine_labelIds.png`` mapped with the official labelId -> trainId table
(every other id -> 255). Under the data root or its ``cityscapes/``. Test split: no labels.

Instances (for the iIoU scores) from ``*_gtFine_instanceIds.png`` beside the label: values
above 1000 are ``labelId * 1000 + instance number``; instances of classes ignored in
evaluation (caravan, trailer) are dropped, as the official script does. A missing instance
file is allowed: the run then reports no iIoU and says why.

Predictions are written in labelIds (7..33), the official benchmark's format. Colours: the
official trainId colours.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import (IGNORE, INSTANCE_KEY, Dataset, DatasetError, EvalDefaults, InstanceScheme,
                   Published, Sample, Split, TrainRecipe, find_root, frozen_palette, lut)

CLASSES = (
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
    'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
    'motorcycle', 'bicycle',
)
COLORS = (
    (128,  64, 128), (244,  35, 232), ( 70,  70,  70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170,  30), (220, 220,   0), (107, 142,  35), (152, 251, 152), ( 70, 130, 180), (220,  20,  60),
    (255,   0,   0), (  0,   0, 142), (  0,   0,  70), (  0,  60, 100), (  0,  80, 100), (  0,   0, 230),
    (119,  11,  32),
)
# Official labelId -> trainId (labels.py; every other id -> 255).
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9,
             23: 10, 24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
LABEL_IDS = 34                          # labelIds 0..33 (-1, license plate, is never stored)
LUT = lut(TRAIN_IDS)
INVERSE = np.zeros(256, np.uint8)       # trainId -> labelId
INVERSE[list(TRAIN_IDS.values())] = list(TRAIN_IDS.keys())
INVERSE.setflags(write=False)

IMAGE_SUFFIX = "_leftImg8bit.png"
TRAIN_ID_SUFFIX = "_gtFine_labelTrainIds.png"
LABEL_ID_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"

# The benchmark's categories (labels.py, void left out: it has no evaluated class) and the
# average instance size per class (evalPixelLevelSemanticLabeling.py, args.avgClassSize;
# caravan and trailer are ignored in evaluation), in trainIds.
SCHEME = InstanceScheme(
    name="cityscapes",
    files=INSTANCE_SUFFIX[1:-len(".png")],
    categories=(("flat", (0, 1)), ("construction", (2, 3, 4)), ("object", (5, 6, 7)),
                ("nature", (8, 9)), ("sky", (10,)), ("human", (11, 12)),
                ("vehicle", (13, 14, 15, 16, 17, 18))),
    avg_size={11: 3462.4756337644, 12: 3930.4788056518, 13: 12794.0202738185,
              14: 27855.1264367816, 15: 35732.1511111111, 16: 67583.7075812274,
              17: 6298.7200839748, 18: 4672.3249222261})


class Cityscapes(Dataset):
    def samples(self, root, split="val"):
        root = find_root(Path(root), "leftImg8bit", ("cityscapes",))
        images = sorted((root / "leftImg8bit" / split).glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise DatasetError(f"{root / 'leftImg8bit' / split}: no *{IMAGE_SUFFIX} images")
        labelled = self.split(split).labelled
        out = []
        for p in images:
            stem = p.name[: -len(IMAGE_SUFFIX)]
            label = None
            if labelled:
                gt = root / "gtFine" / split / p.parent.name
                label = gt / f"{stem}{TRAIN_ID_SUFFIX}"
                if not label.exists():
                    label = gt / f"{stem}{LABEL_ID_SUFFIX}"
            out.append(Sample(p.name[: -len(".png")], p, label, self.instance_path(label)))
        return out

    def instance_path(self, label):
        """The gtFine_instanceIds file beside a gtFine label file (None for other names)."""
        if label is None:
            return None
        for kind in (TRAIN_ID_SUFFIX, LABEL_ID_SUFFIX):
            if label.name.endswith(kind):
                return label.with_name(label.name[: -len(kind)] + INSTANCE_SUFFIX)
        return None

    def decode_values(self, values, path):
        return values if path.name.endswith(TRAIN_ID_SUFFIX) else LUT[values]

    def to_dataset_ids(self, pred):
        return INVERSE[pred]

    def from_dataset_ids(self, ids):
        return LUT[ids].astype(np.int64)

    def decode_instances(self, raw):
        """instanceIds values -> trainId * 1000 + instance number where the value is above
        1000 and its labelId (value // 1000) is evaluated; -1 elsewhere (the official
        script's ``instanceIds > 1000``)."""
        raw = raw.astype(np.int64)
        label_id = raw // 1000
        train_id = np.where(label_id < 256, LUT[np.clip(label_id, 0, 255)], IGNORE)
        keep = (raw > 1000) & (train_id != IGNORE)
        return np.where(keep, train_id.astype(np.int64) * INSTANCE_KEY + raw % 1000,
                        -1).astype(np.int32)


DATASET = Cityscapes(
    name="cityscapes",
    title="Cityscapes",
    classes=CLASSES,
    palette=frozen_palette(COLORS),
    label_ids=LABEL_IDS,
    splits={"val": Split(500), "test": Split(1525, labelled=False), "train": Split(2975)},
    train_split="train",
    crop_size=713,
    eval=EvalDefaults(split="val", base_size=2048,
                      published_ss=Published(79.70, 96.38),
                      published_ms=Published(80.91, 96.59)),
    train=TrainRecipe(iterations=90_000, rotate=False, blur=False),
    instances=SCHEME,
)
