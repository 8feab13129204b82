"""The authors' protocol in strips of output rows: labels of an image of any size in memory
that follows the scales' maps and one strip, not the image times the classes.

`protocol.segment` holds the (C, H, W) float32 probabilities of the whole image (and, while
resizing, float64 copies of channel groups): 150 classes on a 10000 x 10000 image are 60 GB.
Yet the network never sees more than the image resized to base_size * scale + 1 on its long
side. So here, for each scale, the probability map at that scale (`scale_probs`, the windows,
flip and softmax, bounded by base size and scale) is computed once and kept; then for each
strip of output rows every scale's map is resized to just those rows
(`resize.RowsOfResize`: MATLAB's imresize is separable and each output row reads a few input
rows), renormalised, summed over scales and reduced to labels (argmax as MATLAB's max). Only
the labels are kept whole: uint8 (int32 above 256 classes).

Every step is the one `protocol.segment_counted` runs, on the same numbers in the same order,
so the labels and the softmax counts are identical to it (tests/test_strips.py), whatever the
strip height. Only MATLAB resizing has strips (``resize="opencv"`` runs whole).

Peak memory: the image, its scaled copies, the scales' maps ((C + 1) x scaled rows x scaled
cols float32 each), one strip of (C + 1) x strip rows x cols float32 and its float64 working
set, and the labels.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .protocol import (Model, Settings, SoftmaxCounts, predict, renormalise, scale_probs,
                       scaled_images)
from .resize import RowsOfResize

STRIP_ELEMENTS = 1 << 24        # float32 values of one strip's map (64 MiB): sets its height
AUTO_ELEMENTS = 1 << 27         # a whole-image map above this (512 MiB float32): strips


def label_dtype(num_classes: int) -> np.dtype:
    """The smallest integer type that holds class ids 0..num_classes-1."""
    return np.dtype(np.uint8) if num_classes <= 256 else np.dtype(np.int32)


def strip_height(num_classes: int, cols: int, budget: int = STRIP_ELEMENTS) -> int:
    """Output rows per strip so that one strip's (C + 1, rows, cols) map stays within budget."""
    return max(1, budget // ((num_classes + 1) * cols))


def wants_strips(num_classes: int, rows: int, cols: int, resize: str = "matlab") -> bool:
    """The automatic choice: strips where the whole-image map would exceed AUTO_ELEMENTS."""
    return resize == "matlab" and num_classes * rows * cols > AUTO_ELEMENTS


def segment_in_strips(model: Model, image: np.ndarray, settings: Settings,
                      strip_rows: int | None = None,
                      scaled: list[np.ndarray] | None = None,
                      progress: Callable[[int], None] | None = None
                      ) -> tuple[np.ndarray, SoftmaxCounts]:
    """(labels (H, W), SoftmaxCounts) of one RGB uint8 image, equal to
    ``predict(segment_counted(...)[0])`` and its counts. strip_rows: output rows per strip
    (default: `strip_height`); progress: called with the rows done after each strip."""
    if settings.resize != "matlab":
        raise ValueError(f"strips need resize 'matlab' (separable); got {settings.resize!r}")
    if scaled is None:
        scaled = scaled_images(image, settings)
    rows, cols = image.shape[:2]
    c = settings.num_classes
    maps = []                   # (map, follow the validity channel?, its resize to the image)
    for img_s in scaled:
        p = scale_probs(model, img_s, settings, validity=True)
        follow = not bool((p[c] == 1).all())
        maps.append((p if follow else p[:c], follow,
                     RowsOfResize(p.shape[1], p.shape[2], (rows, cols))))
    labels = np.empty((rows, cols), label_dtype(c))
    step = strip_rows or strip_height(c, cols)
    nan_pixels = altered_pixels = 0
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        total = nan = altered = None
        for p, follow, resize in maps:
            q = resize(p, r0, r1)
            if follow:
                v = q[c]
                bad, part = v.isnan() | (v == 0), (v > 0) & (v < 1)
            else:
                bad = part = torch.zeros((r1 - r0, cols), dtype=torch.bool, device=q.device)
            nan = bad if nan is None else nan | bad
            altered = part if altered is None else altered | part
            q = renormalise(q[:c])
            total = q if total is None else total + q
        altered &= ~nan
        nan_pixels += int(nan.sum())
        altered_pixels += int(altered.sum())
        labels[r0:r1] = predict(total / len(maps))
        if progress:
            progress(r1)
    counts = SoftmaxCounts(nan_pixels, altered_pixels, int(nan_pixels + altered_pixels > 0), 1)
    return labels, counts


__all__ = ["segment_in_strips", "strip_height", "wants_strips", "label_dtype",
           "STRIP_ELEMENTS", "AUTO_ELEMENTS"]
