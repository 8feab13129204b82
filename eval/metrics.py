"""Scoring exactly as the authors' eval_acc.m, intersectionAndUnion.m and pixelAccuracy.m.

Per image, with labels 0..C-1 and 255 ignored:
- labelled = pixels whose label is not ignored; predictions on ignored pixels are dropped
  (they count neither in the prediction's area nor anywhere else);
- intersection_c = #(pred == label == c), union_c = #(pred == c, labelled) + #(label == c)
  - intersection_c; correct = #(pred == label, labelled).
Over the split (int64 sums): ``IoU_c = sum I_c / sum_images (eps + U_c)`` i.e.
``I_c / (U_c + n_images * eps)`` with MATLAB's eps = 2^-52 (an absent class scores 0),
``mIoU = mean over all C classes``, ``pixel accuracy = sum correct / sum labelled``.

The Cityscapes evaluation script instead leaves out classes with ``TP + FP + FN = 0``
(``cityscapes_miou``); on the full val split every class occurs and both agree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MATLAB_EPS = float(np.finfo(np.float64).eps)  # 2.220446049250313e-16
IGNORE = 255


@dataclass
class Stats:
    """Integer statistics of a set of images; add them, all-reduce them as one vector."""
    num_classes: int
    intersection: np.ndarray = field(default=None)
    union: np.ndarray = field(default=None)
    correct: int = 0
    labelled: int = 0
    images: int = 0

    def __post_init__(self):
        c = self.num_classes
        if self.intersection is None:
            self.intersection = np.zeros(c, np.int64)
        if self.union is None:
            self.union = np.zeros(c, np.int64)

    def add(self, other: "Stats") -> "Stats":
        self.intersection += other.intersection
        self.union += other.union
        self.correct += other.correct
        self.labelled += other.labelled
        self.images += other.images
        return self

    def to_vector(self) -> np.ndarray:
        return np.concatenate([self.intersection, self.union,
                               [self.correct, self.labelled, self.images]]).astype(np.int64)

    @classmethod
    def from_vector(cls, v: np.ndarray, num_classes: int) -> "Stats":
        c = num_classes
        v = np.asarray(v, np.int64)
        return cls(c, v[:c].copy(), v[c:2 * c].copy(), int(v[2 * c]), int(v[2 * c + 1]),
                   int(v[2 * c + 2]))


def image_stats(pred: np.ndarray, label: np.ndarray, num_classes: int) -> Stats:
    """intersectionAndUnion.m + pixelAccuracy.m of one image (pred: class ids, label: ids/255)."""
    if pred.shape != label.shape:
        raise ValueError(f"prediction {pred.shape} and label {label.shape} differ in size")
    c = num_classes
    pred = pred.astype(np.int64).ravel()
    label = label.astype(np.int64).ravel()
    valid = label != IGNORE
    if np.any(label[valid] >= c) or np.any(label[valid] < 0):
        raise ValueError(f"label values outside 0..{c - 1} and {IGNORE}")
    if np.any(pred < 0) or np.any(pred >= c):
        raise ValueError(f"prediction values outside 0..{c - 1}")
    p, l = pred[valid], label[valid]
    hit = p == l
    inter = np.bincount(p[hit], minlength=c)
    area_pred = np.bincount(p, minlength=c)
    area_lab = np.bincount(l, minlength=c)
    return Stats(c, inter.astype(np.int64), (area_pred + area_lab - inter).astype(np.int64),
                 int(hit.sum()), int(valid.sum()), 1)


def iou(stats: Stats) -> np.ndarray:
    """Per-class IoU as eval_acc.m: sum(I) ./ sum(eps + U) over the images."""
    return stats.intersection / (stats.union + stats.images * MATLAB_EPS)


def summary(stats: Stats) -> dict:
    per_class = iou(stats)
    return {
        "iou": per_class.tolist(),
        "miou": float(per_class.mean()),
        "pixel_acc": float(stats.correct / stats.labelled) if stats.labelled else float("nan"),
    }


def cityscapes_miou(stats: Stats) -> float:
    """The Cityscapes script's mean: TP / (TP + FP + FN) over classes where that is defined."""
    present = stats.union > 0
    if not present.any():
        return float("nan")
    return float((stats.intersection[present] / stats.union[present]).mean())
