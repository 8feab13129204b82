"""Per-image scores of a run, to find the images a model does worst on (the report's
"worst images").

One image's scores come from its own confusion matrix (`metrics.Stats` of that image):
- ``miou``: the mean IoU over the classes present in the image (in its labels or in its
  prediction, i.e. union > 0), ``I_c / U_c``: a class absent from both says nothing about the
  image (unlike the split's mIoU, which averages over all classes);
- ``pixel_acc``: correct / labelled pixels.
An image without labelled pixels has neither (it is never among the worst).

Scores are kept as int64 fixed point (units of 1e-9, +1 so that 0 means "not scored here") in
one vector indexed by the sample's position in the split, so that the processes of a sharded
run sum their vectors into the same one (each position is scored by exactly one process).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from psp_torch.runtime import Dist, all_sum_int

from .metrics import Stats

UNIT = 10 ** 9      # fixed point: 1e-9


def image_miou(stats: Stats) -> float | None:
    """Mean IoU over the classes present in one image's labels or prediction (None: none)."""
    present = stats.union > 0
    if not present.any():
        return None
    return float((stats.intersection[present] / stats.union[present]).mean())


def image_pixel_acc(stats: Stats) -> float | None:
    return stats.correct / stats.labelled if stats.labelled else None


@dataclass(frozen=True)
class ImageScore:
    index: int           # position in the split's sample list
    miou: float
    pixel_acc: float


class ImageScores:
    """The scores of the images of a split of `n` samples, by position."""

    def __init__(self, n: int):
        self.fixed = np.zeros((n, 2), np.int64)

    def add(self, index: int, stats: Stats) -> None:
        miou, acc = image_miou(stats), image_pixel_acc(stats)
        if miou is None or acc is None:
            return
        self.fixed[index] = [round(miou * UNIT) + 1, round(acc * UNIT) + 1]

    def summed(self, d: Dist) -> "ImageScores":
        """The scores of every process's images (collective: every process calls it)."""
        total = ImageScores(len(self.fixed))
        total.fixed = all_sum_int(self.fixed.ravel(), d).reshape(self.fixed.shape)
        return total

    def scored(self) -> list[ImageScore]:
        return [ImageScore(int(i), (m - 1) / UNIT, (a - 1) / UNIT)
                for i, (m, a) in enumerate(self.fixed) if m > 0]

    def worst(self, n: int) -> list[ImageScore]:
        """The `n` images with the lowest mIoU (then pixel accuracy, then position)."""
        return sorted(self.scored(), key=lambda s: (s.miou, s.pixel_acc, s.index))[:n]
