"""The authors' test protocol as a Python API: made once from a model, called per image.

    from pspnet_caffe.eval import Segmenter
    seg = Segmenter("pspnet50_ADE20K.pth", ms=False, device="cpu")
    result = seg("photo.jpg")          # a path, a PIL image or an (H, W, 3) uint8 RGB array
    result.labels                      # (H, W) class ids 0..C-1 (uint8; int32 above 256 classes)
    result.colour(), result.overlay()  # (H, W, 3) uint8 with the model's palette
    for r in seg.run("photos/"):       # a folder, a glob pattern, or a list of any of the above
        print(r.source, r.top())

Every default comes from the model's meta and its dataset's evaluation defaults
(`psp_torch.datasets`): crop and base size, mean, window stride, the multi-scale set for
``ms=True``; flip is on, as the authors ran it. The protocol is `protocol.segment_counted`;
images whose (C, H, W) probability map would be large run in strips of output rows
(`strips.segment_in_strips`: the same labels, memory that does not grow with image x classes).
``strip_rows``: None chooses (strips above `strips.AUTO_ELEMENTS` probabilities), 0 never, N
strips of N rows. ``probs=True`` keeps the (C, H, W) probabilities (whole image, never strips).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np
import torch

from psp_torch import cli, datasets
from psp_torch.datasets import listfile
from psp_torch.presets import MEAN_RGB

from .inputs import as_rgb, image_paths
from .outputs import overlay
from .protocol import Settings, SoftmaxCounts, predict, segment_counted
from .strips import label_dtype, segment_in_strips, wants_strips


def protocol_settings(meta: dict, *, num_classes: int | None = None, dataset: str | None = None,
                      ms: bool = False, scales: Iterable[float] | None = None, flip: bool = True,
                      crop_size: int | None = None, base_size: int | None = None,
                      device: str = "cpu", batch: int = 2, precision: str = "fp32",
                      softmax: str = "stable", resize: str = "matlab") -> Settings:
    """The protocol's Settings for a model's meta: what is not given comes from the meta, then
    from the dataset's facts and evaluation defaults (one's own classes: `listfile`'s)."""
    meta = {k: v for k, v in (meta or {}).items() if v is not None}
    facts = dataset_facts(dataset or meta.get("dataset"))
    classes = meta.get("num_classes", num_classes or facts.num_classes or None)
    if classes is None:
        raise ValueError("the model's meta has no num_classes: pass num_classes (or dataset)")
    if num_classes is not None and num_classes != classes:
        raise ValueError(f"the model has {classes} classes, num_classes is {num_classes}")
    defaults = facts.eval
    if ms and scales is not None:
        raise ValueError("give ms=True or scales, not both")
    return Settings(
        num_classes=int(classes),
        crop_size=int(crop_size or meta.get("crop_size", facts.crop_size)),
        base_size=int(base_size or meta.get("base_size", defaults.base_size)),
        mean_rgb=tuple(meta.get("mean_rgb", MEAN_RGB)),
        scales=tuple(defaults.ms_scales if ms else scales or (1.0,)),
        flip=flip, resize=resize, batch=batch, device=str(device), precision=precision,
        softmax=softmax, stride_rate=defaults.stride_rate)


def dataset_facts(name: str | None):
    """A benchmark's facts by name; one's own classes (`listfile`) for None or another name."""
    return datasets.get(name if name in datasets.names() else listfile.DATASET.name)


@dataclass
class Result:
    """One image's segmentation.

    labels: (H, W) class ids; probs: (C, H, W) float32 final probabilities (with
    ``Segmenter(probs=True)``), else None; image: the RGB uint8 input; palette: (K >= C, 3)
    uint8; class_names: C names; softmax_counts: where MATLAB's float32 softmax would overflow;
    source: the path the image came from (None for arrays)."""
    labels: np.ndarray
    probs: np.ndarray | None
    image: np.ndarray = field(repr=False)
    palette: np.ndarray = field(repr=False)
    class_names: list = field(repr=False)
    softmax_counts: SoftmaxCounts = field(default_factory=SoftmaxCounts, repr=False)
    source: str | None = None

    def colour(self) -> np.ndarray:
        """(H, W, 3) uint8: each pixel the colour of its class."""
        return self.palette[self.labels]

    def overlay(self) -> np.ndarray:
        """(H, W, 3) uint8: the image and its class colours, half and half."""
        return overlay(self.image, self.colour())

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The k largest classes: (name, share of the pixels), largest first."""
        ids, counts = np.unique(self.labels, return_counts=True)
        best = sorted(zip(counts.tolist(), ids.tolist()), key=lambda t: (-t[0], -t[1]))[:k]
        return [(self.class_names[i], c / self.labels.size) for c, i in best]


class Segmenter:
    """The authors' protocol around one model. `model`: a model file (.pth / .safetensors,
    read by `psp_torch.load`), or a loaded model (an nn.Module with ``.meta``, or any callable
    from (N, 3, h, w) BGR mean-subtracted input to (N, C, h, w) scores, with num_classes).
    `class_names`: C names (default: the meta's, else the dataset's, else 'class k').
    `settings`: the protocol's Settings as a whole (then the other protocol options are not
    used); see the module docstring for the rest."""

    def __init__(self, model, *, ms: bool = False, scales: Iterable[float] | None = None,
                 flip: bool = True, crop_size: int | None = None, base_size: int | None = None,
                 device: str | None = None, batch: int = 2, precision: str = "fp32",
                 softmax: str = "stable", resize: str = "matlab", dataset: str | None = None,
                 num_classes: int | None = None, class_names: list | None = None,
                 strip_rows: int | None = None,
                 probs: bool = False, settings: Settings | None = None):
        device = str(device or (settings.device if settings else cli.default_device()))
        if isinstance(model, (str, os.PathLike)):
            import psp_torch
            model = psp_torch.load(model, device=device)
        elif isinstance(model, torch.nn.Module):
            model = model.to(device).eval()
        self.model = model
        self.meta = {k: v for k, v in (getattr(model, "meta", None) or {}).items()
                     if v is not None}
        self.settings = settings or protocol_settings(
            self.meta, num_classes=num_classes, dataset=dataset, ms=ms, scales=scales,
            flip=flip, crop_size=crop_size, base_size=base_size, device=device, batch=batch,
            precision=precision, softmax=softmax, resize=resize)
        if strip_rows is not None and strip_rows < 0:
            raise ValueError(f"strip_rows must be >= 0, got {strip_rows}")
        if strip_rows and self.settings.resize != "matlab":
            raise ValueError("strips need resize='matlab'")
        self.strip_rows = strip_rows
        self.keep_probs = probs
        c = self.settings.num_classes
        facts = dataset_facts(dataset or self.meta.get("dataset"))
        self.palette = np.asarray(next(
            p for p in (self.meta.get("palette"), facts.palette, dataset_facts(None).palette,
                        _spread_palette(c)) if p is not None and len(p) >= c), np.uint8)
        names = class_names or self.meta.get("class_names") or facts.classes
        self.class_names = list(names) if names and len(names) == c else \
            [f"class {k}" for k in range(c)]

    def uses_strips(self, rows: int, cols: int) -> bool:
        """Whether an image of rows x cols runs in strips with these options."""
        if self.keep_probs or self.strip_rows == 0:
            return False
        return bool(self.strip_rows) or wants_strips(self.settings.num_classes, rows, cols,
                                                     self.settings.resize)

    def __call__(self, image, scaled: list[np.ndarray] | None = None) -> Result:
        """Segment one image (a path, a PIL image or an (H, W, 3) uint8 RGB array).
        `scaled`: `protocol.scaled_images` of it, when computed elsewhere."""
        source = str(image) if isinstance(image, (str, os.PathLike)) else None
        img = as_rgb(image)
        probs = None
        if self.uses_strips(*img.shape[:2]):
            labels, counts = segment_in_strips(self.model, img, self.settings,
                                               self.strip_rows or None, scaled)
        else:
            p, counts = segment_counted(self.model, img, self.settings, scaled)
            labels = predict(p).astype(label_dtype(self.settings.num_classes))
            if self.keep_probs:
                probs = p.cpu().numpy()
            del p
        return Result(labels, probs, img, self.palette, self.class_names, counts, source)

    def run(self, images, progress: bool = False) -> Iterator[Result]:
        """Segment many images, one Result at a time: a folder, a glob pattern, a file, or a
        list of paths / PIL images / arrays (folders and patterns expanded as `image_paths`)."""
        items = [images] if isinstance(images, (str, os.PathLike)) else list(images)
        expanded = []
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                expanded.extend(image_paths([item]))
            else:
                expanded.append(item)
        if progress:
            from tqdm import tqdm
            expanded = tqdm(expanded, unit="img")
        for item in expanded:
            yield self(item)


def _spread_palette(n: int) -> np.ndarray:
    """n distinct colours (the VOC bit-interleaving scheme widened to 8 bits a channel)."""
    out = np.zeros((n, 3), np.uint8)
    for k in range(n):
        c, v = k, [0, 0, 0]
        for bit in range(8):
            for ch in range(3):
                v[ch] |= ((c >> ch) & 1) << (7 - bit)
            c >>= 3
        out[k] = v
    return out


__all__ = ["Segmenter", "Result", "protocol_settings"]
