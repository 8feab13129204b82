"""ADE20K (SceneParsing, ADEChallengeData2016): 150 classes.

Layout: ``images/<sub>/*.jpg``, ``annotations/<sub>/<stem>.png`` with <sub> ``validation``
(split ``val``) or ``training`` (``train`` / ``training``), under the data root or its
``ADEChallengeData2016/``.

Labels: 0 = "other" (ignored), 1..150 = the classes; the authors' evaluation expects
0 -> 255 and k -> k - 1 (forgetting it gives a near-zero mIoU). Predictions are written back
in the files' ids 1..150.

Classes: the first name of each objectInfo150 entry; colours: the authors' ``color150``
table (evaluation/visualizationCode/color150.mat), class k-1 at row k-1.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import (IGNORE, Dataset, DatasetError, EvalDefaults, Published, Sample, Split,
                   TrainRecipe, find_root, frozen_palette, lut)

CLASSES = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road', 'bed', 'windowpane', 'grass',
    'cabinet', 'sidewalk', 'person', 'earth', 'door', 'table', 'mountain', 'plant', 'curtain',
    'chair', 'car', 'water', 'painting', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug',
    'field', 'armchair', 'seat', 'fence', 'desk', 'rock', 'wardrobe', 'lamp', 'bathtub',
    'railing', 'cushion', 'base', 'box', 'column', 'signboard', 'chest of drawers', 'counter',
    'sand', 'sink', 'skyscraper', 'fireplace', 'refrigerator', 'grandstand', 'path', 'stairs',
    'runway', 'case', 'pool table', 'pillow', 'screen door', 'stairway', 'river', 'bridge',
    'bookcase', 'blind', 'coffee table', 'toilet', 'flower', 'book', 'hill', 'bench',
    'countertop', 'stove', 'palm', 'kitchen island', 'computer', 'swivel chair', 'boat', 'bar',
    'arcade machine', 'hovel', 'bus', 'towel', 'light', 'truck', 'tower', 'chandelier',
    'awning', 'streetlight', 'booth', 'television receiver', 'airplane', 'dirt track',
    'apparel', 'pole', 'land', 'bannister', 'escalator', 'ottoman', 'bottle', 'buffet',
    'poster', 'stage', 'van', 'ship', 'fountain', 'conveyer belt', 'canopy', 'washer',
    'plaything', 'swimming pool', 'stool', 'barrel', 'basket', 'waterfall', 'tent', 'bag',
    'minibike', 'cradle', 'oven', 'ball', 'food', 'step', 'tank', 'trade name', 'microwave',
    'pot', 'animal', 'bicycle', 'lake', 'dishwasher', 'screen', 'blanket', 'sculpture', 'hood',
    'sconce', 'vase', 'traffic light', 'tray', 'ashcan', 'fan', 'pier', 'crt screen', 'plate',
    'monitor', 'bulletin board', 'shower', 'radiator', 'glass', 'clock', 'flag',
)
COLORS = (
    (120, 120, 120), (180, 120, 120), (  6, 230, 230), ( 80,  50,  50), (  4, 200,   3), (120, 120,  80),
    (140, 140, 140), (204,   5, 255), (230, 230, 230), (  4, 250,   7), (224,   5, 255), (235, 255,   7),
    (150,   5,  61), (120, 120,  70), (  8, 255,  51), (255,   6,  82), (143, 255, 140), (204, 255,   4),
    (255,  51,   7), (204,  70,   3), (  0, 102, 200), ( 61, 230, 250), (255,   6,  51), ( 11, 102, 255),
    (255,   7,  71), (255,   9, 224), (  9,   7, 230), (220, 220, 220), (255,   9,  92), (112,   9, 255),
    (  8, 255, 214), (  7, 255, 224), (255, 184,   6), ( 10, 255,  71), (255,  41,  10), (  7, 255, 255),
    (224, 255,   8), (102,   8, 255), (255,  61,   6), (255, 194,   7), (255, 122,   8), (  0, 255,  20),
    (255,   8,  41), (255,   5, 153), (  6,  51, 255), (235,  12, 255), (160, 150,  20), (  0, 163, 255),
    (140, 140, 140), (250,  10,  15), ( 20, 255,   0), ( 31, 255,   0), (255,  31,   0), (255, 224,   0),
    (153, 255,   0), (  0,   0, 255), (255,  71,   0), (  0, 235, 255), (  0, 173, 255), ( 31,   0, 255),
    ( 11, 200, 200), (255,  82,   0), (  0, 255, 245), (  0,  61, 255), (  0, 255, 112), (  0, 255, 133),
    (255,   0,   0), (255, 163,   0), (255, 102,   0), (194, 255,   0), (  0, 143, 255), ( 51, 255,   0),
    (  0,  82, 255), (  0, 255,  41), (  0, 255, 173), ( 10,   0, 255), (173, 255,   0), (  0, 255, 153),
    (255,  92,   0), (255,   0, 255), (255,   0, 245), (255,   0, 102), (255, 173,   0), (255,   0,  20),
    (255, 184, 184), (  0,  31, 255), (  0, 255,  61), (  0,  71, 255), (255,   0, 204), (  0, 255, 194),
    (  0, 255,  82), (  0,  10, 255), (  0, 112, 255), ( 51,   0, 255), (  0, 194, 255), (  0, 122, 255),
    (  0, 255, 163), (255, 153,   0), (  0, 255,  10), (255, 112,   0), (143, 255,   0), ( 82,   0, 255),
    (163, 255,   0), (255, 235,   0), (  8, 184, 170), (133,   0, 255), (  0, 255,  92), (184,   0, 255),
    (255,   0,  31), (  0, 184, 255), (  0, 214, 255), (255,   0, 112), ( 92, 255,   0), (  0, 224, 255),
    (112, 224, 255), ( 70, 184, 160), (163,   0, 255), (153,   0, 255), ( 71, 255,   0), (255,   0, 163),
    (255, 204,   0), (255,   0, 143), (  0, 255, 235), (133, 255,   0), (255,   0, 235), (245,   0, 255),
    (255,   0, 122), (255, 245,   0), ( 10, 190, 212), (214, 255,   0), (  0, 204, 255), ( 20,   0, 255),
    (255, 255,   0), (  0, 153, 255), (  0,  41, 255), (  0, 255, 204), ( 41,   0, 255), ( 41, 255,   0),
    (173,   0, 255), (  0, 245, 255), ( 71,   0, 255), (122,   0, 255), (  0, 255, 184), (  0,  92, 255),
    (184, 255,   0), (  0, 133, 255), (255, 214,   0), ( 25, 194, 194), (102, 255,   0), ( 92,   0, 255),
)
FOLDERS = {"val": "validation", "train": "training"}      # split -> folder (else the name)
LUT = lut({k: k - 1 for k in range(1, len(CLASSES) + 1)})  # stored -> class id


class ADE20K(Dataset):
    def samples(self, root, split="val"):
        root = find_root(Path(root), "images", ("ADEChallengeData2016",))
        sub = FOLDERS.get(split, split)
        images = sorted((root / "images" / sub).glob("*.jpg"))
        if not images:
            raise DatasetError(f"{root / 'images' / sub}: no .jpg images")
        return [Sample(p.stem, p, root / "annotations" / sub / f"{p.stem}.png") for p in images]

    def decode_values(self, values, path):
        return LUT[values]

    def to_dataset_ids(self, pred):
        return (pred + 1).astype(np.uint8)

    def from_dataset_ids(self, ids):
        ids = ids.astype(np.int64)
        return np.where(ids == 0, IGNORE, ids - 1)


DATASET = ADE20K(
    name="ade20k",
    title="ADE20K",
    classes=CLASSES,
    palette=frozen_palette(COLORS),
    label_ids=len(CLASSES) + 1,
    splits={"val": Split(2000), "training": Split(20210)},
    train_split="training",
    crop_size=473,
    eval=EvalDefaults(split="val", base_size=512,
                      published_ss=Published(41.68, 80.04),
                      published_ms=Published(42.78, 80.76)),
    train=TrainRecipe(iterations=150_000, rotate=True, blur=True),
)
