"""Scoring a list of samples with the authors' protocol: the pieces eval/run.py's loop and the
training's validation share.

- `images`: the samples read (image, ground truth) and resized to every scale in loader worker
  processes while the network runs;
- `check_label_size`: a label must have its image's size;
- `score_image`: the statistics of one prediction against its ground truth (with the
  benchmark's instance scheme where it has one);
- `evaluate`: all of it over this process's share of the samples, the statistics summed over
  the processes (the training's validation; eval/run.py adds outputs and --resume around the
  same pieces).
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from psp_torch import datasets
from psp_torch.runtime import Dist, all_sum_int
from .metrics import Stats, image_stats
from .protocol import Settings, predict, scaled_images, segment


class Images(torch.utils.data.Dataset):
    """Reads image and label and resizes the image to every scale, in worker processes.
    Samples whose names are in `done` come back as (i, None, None, None). Images and labels
    above `max_pixels` (width x height) are refused before they are decoded."""

    def __init__(self, items, dataset, settings, done=frozenset(), max_pixels=datasets.MAX_PIXELS):
        self.items, self.dataset, self.settings, self.done = items, dataset, settings, done
        self.max_pixels = max_pixels

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        s = self.items[i]
        if s.name in self.done:
            return i, None, None, None
        gt = None if s.label is None else \
            datasets.get(self.dataset).read_ground_truth(s, self.settings.num_classes,
                                                         self.max_pixels)
        img = datasets.read_image(s.image, self.max_pixels)
        return i, img, scaled_images(img, self.settings), gt


def _as_is(item):
    return item


def images(items, dataset: str, settings: Settings, *, workers: int = 0,
           done=frozenset(),
           max_pixels: int | None = datasets.MAX_PIXELS) -> torch.utils.data.DataLoader:
    """(index, image, scaled images, (label, instances) or None) per sample, in order.
    Its own generator: starting it draws a seed, and torch's global RNG (a training run's
    dropout draws) must not move when a run validates."""
    return torch.utils.data.DataLoader(
        Images(items, dataset, settings, done, max_pixels), batch_size=None, shuffle=False,
        collate_fn=_as_is, num_workers=workers, prefetch_factor=2 if workers else None,
        generator=torch.Generator())


def check_label_size(sample, image: np.ndarray, label: np.ndarray | None) -> None:
    if label is not None and label.shape != image.shape[:2]:
        raise datasets.DatasetError(
            f"{sample.label}: label is {label.shape[0]}x{label.shape[1]} (rows x cols), its "
            f"image {sample.image} is {image.shape[0]}x{image.shape[1]}")


def score_image(pred: np.ndarray, gt, dataset: str, num_classes: int) -> Stats:
    """The statistics of one prediction; `gt` = (label, instances or None)."""
    return image_stats(pred, gt[0], num_classes, gt[1], datasets.get(dataset).instances)


def evaluate(model, items, dataset: str, settings: Settings, d: Dist = Dist(), *,
             workers: int = 0, progress: bool = False, desc: str = "val",
             max_pixels: int | None = datasets.MAX_PIXELS) -> Stats:
    """The protocol on every labelled sample of `items`: this process scores its share
    (items[rank::world]); the statistics of all of them come back on every process."""
    shard = items[d.rank::d.world]
    stats = Stats(settings.num_classes)
    for i, img, scaled, gt in tqdm(images(shard, dataset, settings, workers=workers,
                                          max_pixels=max_pixels),
                                   total=len(shard), unit="img", desc=desc, leave=False,
                                   disable=not (progress and d.main)):
        if gt is None:
            raise datasets.DatasetError(f"{shard[i].image}: no label to score the prediction against")
        check_label_size(shard[i], img, gt[0])
        pred = predict(segment(model, img, settings, scaled))
        stats.add(score_image(pred, gt, dataset, settings.num_classes))
    return Stats.from_vector(all_sum_int(stats.to_vector(), d), settings.num_classes)
