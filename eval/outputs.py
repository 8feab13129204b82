"""Per-image output files, written atomically (temp file in the same folder + os.replace).

Layout under OUT:
- ``labels/<name>.png``: the prediction in the dataset's own ids (VOC 0..20 as a palette PNG,
  ADE20K 1..150 grey, Cityscapes labelIds grey); for a split scored by an official server
  its submission layout instead (VOC test: ``results/VOC2012/Segmentation/comp6_test_cls/``);
- ``color/<name>.png``: RGB with the dataset palette;
- ``probs/<name>.npy``: float32 (C, H, W) final probabilities (``--save-probs``);
- ``overlay/<name>.png``: image and colours blended half and half (``--image``);
- the report of a scored run (`eval/html_report.py`): ``REPORT_FILES`` (``report.html`` and
  the files it shows) and ``worst/NN.png`` (the worst images, image | prediction | truth).
The label PNG is written last: its presence marks a finished image (``--resume``). It also
carries the image's MATLAB-softmax counts as PNG text chunks (``meta``), so that a resumed run
reports the same counts; image readers (the official scripts included) ignore them.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from psp_torch import datasets
from psp_torch.io import atomic_write

from .datasets import IGNORE, DatasetError, read_png_values


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file and a rename (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def png_bytes(array: np.ndarray, palette: np.ndarray | None = None,
              meta: dict | None = None) -> bytes:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo
    info = None
    if meta:
        info = PngInfo()
        for k, v in meta.items():
            info.add_text(str(k), str(v))
    if palette is not None:
        im = Image.fromarray(array.astype(np.uint8), mode="P")
        im.putpalette(palette.astype(np.uint8).reshape(-1).tolist())
    else:
        im = Image.fromarray(np.ascontiguousarray(array))
    buf = io.BytesIO()
    im.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


REPORT_FILES = ("report.html", "confusion.csv", "confusion.npy", "confusion.png", "legend.png")
WORST_DIR = "worst"


class Writer:
    """Where and how one run writes its per-image outputs (and which files it owns)."""

    def __init__(self, out: Path, dataset: str, split: str = "val"):
        self.out = Path(out)
        self.dataset = dataset
        self.facts = datasets.get(dataset)
        submission = self.facts.split(split).submission
        self.label_dir = self.out / (submission or "labels")

    def label_path(self, name: str) -> Path:
        return self.label_dir / f"{name}.png"

    def probs_path(self, name: str) -> Path:
        return self.out / "probs" / f"{name}.npy"

    def report_path(self, name: str) -> Path:
        """One of the report's files (``REPORT_FILES``) or ``worst/NN.png``."""
        folder, _, base = name.rpartition("/")
        if not (name in REPORT_FILES or (folder == WORST_DIR and base[:-4].isdigit()
                                         and base.endswith(".png"))):
            raise ValueError(f"{name!r} is no file of the evaluation report")
        return self.out / name

    def worst_paths(self) -> list[Path]:
        """The worst-image files of an earlier report in this folder."""
        folder = self.out / WORST_DIR
        return sorted(p for p in folder.glob("*.png") if p.stem.isdigit()) \
            if folder.is_dir() else []

    def colour(self, pred: np.ndarray) -> np.ndarray:
        return self.facts.palette[pred]                 # one's own classes: VOC colours

    def write(self, name: str, pred: np.ndarray, probs: np.ndarray | None = None,
              image: np.ndarray | None = None, meta: dict | None = None) -> None:
        colour = self.colour(pred)
        atomic_write_bytes(self.out / "color" / f"{name}.png", png_bytes(colour))
        if image is not None:
            blend = (image.astype(np.float32) * 0.5 + colour.astype(np.float32) * 0.5)
            atomic_write_bytes(self.out / "overlay" / f"{name}.png",
                               png_bytes(np.round(blend).astype(np.uint8)))
        if probs is not None:
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(probs, np.float32))
            atomic_write_bytes(self.probs_path(name), buf.getvalue())
        ids = self.facts.to_dataset_ids(pred)
        atomic_write_bytes(self.label_path(name),
                           png_bytes(ids, self.facts.label_png_palette, meta))

    def has_outputs(self) -> bool:
        """Any finished image here (a label PNG)?"""
        return self.label_dir.is_dir() and any(self.label_dir.glob("*.png"))

    def clear(self) -> int:
        """Remove the per-image outputs, the results and the report of an earlier run here (a
        fresh run replaces them all, so that none of them outlives the record it was made
        under); returns how many files went. Other files are left alone."""
        gone = 0
        for folder, pattern in ((self.label_dir, "*.png"), (self.out / "color", "*.png"),
                                (self.out / "overlay", "*.png"), (self.out / "probs", "*.npy")):
            if folder.is_dir():
                for p in folder.glob(pattern):
                    p.unlink()
                    gone += 1
        for p in self.worst_paths():
            p.unlink()
            gone += 1
        for name in ("results.json", "results.csv") + REPORT_FILES:
            if (self.out / name).is_file():
                (self.out / name).unlink()
                gone += 1
        return gone

    def finished(self, name: str, need_probs: bool) -> bool:
        return self.label_path(name).is_file() and (
            not need_probs or self.probs_path(name).is_file())

    def read_meta(self, name: str) -> dict:
        """The text chunks of a finished image's label PNG (empty for other PNGs)."""
        from PIL import Image
        with Image.open(self.label_path(name)) as im:
            return dict(getattr(im, "text", {}) or {})

    def read_prediction(self, name: str) -> np.ndarray:
        """Class ids 0..C-1 (255: an id naming no class, a miss) of a finished image, rebuilt
        from its label PNG; ids outside the dataset's own (0..label_ids-1) are an error naming
        the file."""
        path = self.label_path(name)
        ids = read_png_values(path)
        pred = self.facts.from_dataset_ids(ids)
        n = self.facts.num_classes or IGNORE          # one's own classes: any id < 255
        bad = np.unique(ids[(ids >= self.facts.label_ids)
                            | ((pred != IGNORE) & ((pred < 0) | (pred >= n)))])
        if bad.size:
            raise DatasetError(f"{path}: prediction ids {bad.tolist()[:10]} are not "
                               f"{self.dataset} class ids")
        return pred
