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

A run's results (`RESULT_FILES`, and the report's files beside them) are written together at its end (`write_together`:
``results.json`` last, so that its presence means the set is whole) and removed when a run
starts (`claim`), so that they never sit beside another run's record.

What the program may touch (`claim`): a folder is its own when it holds its run record
(``run.json``, `record`) or is new or empty; a folder holding anything else is refused and
left as it is. The record lists every output name the folder's runs planned
(``"outputs"``): a run overwrites and removes only the files of those names (the four
layout files above) and the results; a file at a path it would write that no record lists is
refused, never replaced.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path, PurePosixPath

import numpy as np

from caffe_proto.printable import printable
from psp_torch import datasets
from psp_torch.io import atomic_write

from . import record
from psp_torch.datasets import IGNORE, DatasetError, read_png_values

RESULTS_CSV, RESULTS_JSON = "results.csv", "results.json"
RESULT_FILES = (RESULTS_CSV, RESULTS_JSON)   # a run's results (report.write_results);
                                             # results.json, renamed last, marks them whole
REPORT_FILES = ("report.html", "confusion.csv", "confusion.npy", "confusion.png", "legend.png")
WORST_DIR = "worst"


class OutputError(ValueError):
    """An output folder this program may not write into as asked (message says why)."""


def check_name(name: str, where) -> str:
    """An output name: a relative path inside the output folder (no "..", not absolute);
    `where` is named in the error."""
    if (not isinstance(name, str) or not name or "\0" in name
            or PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts
            or str(PurePosixPath(name)) != name):
        raise OutputError(f"{printable(where)}: output name {printable(name)!r} is not a plain "
                          f"path inside the output folder")
    return name


def write_together(out: Path, files: dict) -> None:
    """Write {name: bytes} into `out` as one set: every file whole beside its final name
    first (``.NAME.staged``, `atomic_write`), then the renames in the given order (the last
    file marks the set whole); on a failure before the renames nothing is left behind."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for name, data in files.items():
            staged.append(atomic_write(out / f".{name}.staged",
                                       lambda tmp, data=data: Path(tmp).write_bytes(data)))
        for tmp, name in zip(staged, files):
            os.replace(tmp, out / name)
    except BaseException:
        for tmp in staged:
            Path(tmp).unlink(missing_ok=True)
        raise


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


def overlay(image: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The image and its class colours blended half and half, (H, W, 3) uint8."""
    blend = image.astype(np.float32) * 0.5 + colour.astype(np.float32) * 0.5
    return np.round(blend).astype(np.uint8)


class Writer:
    """Where and how one run writes its per-image outputs."""

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
            atomic_write_bytes(self.out / "overlay" / f"{name}.png",
                               png_bytes(overlay(image, colour)))
        if probs is not None:
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(probs, np.float32))
            atomic_write_bytes(self.probs_path(name), buf.getvalue())
        ids = self.facts.to_dataset_ids(pred)
        atomic_write_bytes(self.label_path(name),
                           png_bytes(ids, self.facts.label_png_palette, meta))

    def paths(self, name: str) -> list[Path]:
        """Every file an image of this name may have here (label, colour, overlay, probs)."""
        return [self.label_path(name), self.out / "color" / f"{name}.png",
                self.out / "overlay" / f"{name}.png", self.probs_path(name)]

    def owned(self, saved: dict | None) -> set[str]:
        """The output names a saved record lists (a record from before the lists: the label
        PNGs here); a name that is no plain path inside the folder is an error."""
        if saved is None:
            return set()
        where = self.out / record.NAME
        names = saved.get("outputs")
        if names is None:                      # written before records listed their outputs
            return {p.relative_to(self.label_dir).with_suffix("").as_posix()
                    for p in self.label_dir.rglob("*.png")} if self.label_dir.is_dir() else set()
        if not isinstance(names, list):
            raise OutputError(f"{where}: 'outputs' is not a list of names")
        return {check_name(n, where) for n in names}

    def check_inside(self, names) -> None:
        """Every folder an output of these names goes into must lie inside the output folder:
        a linked folder (``labels -> someone's data``) is refused, never written through."""
        root = os.path.realpath(self.out)
        parents = {p.parent for n in names for p in self.paths(n)}
        for folder in sorted(parents):
            real = os.path.realpath(folder)
            if real != root and not real.startswith(root + os.sep):
                raise OutputError(f"{printable(folder)}: leads outside {printable(self.out)} "
                                  f"(a linked folder): refusing to write or remove there")

    def remove(self, names) -> int:
        """Remove the files of these output names; returns how many went."""
        gone = 0
        for name in names:
            for p in self.paths(name):
                if p.is_file() or p.is_symlink():
                    p.unlink()
                    gone += 1
        return gone

    def remove_results(self) -> int:
        """Remove the results and the report of an earlier run of ours here (called once
        the folder is known to be ours, `claim`); returns how many files went."""
        gone = 0
        for p in self.worst_paths():
            p.unlink()
            gone += 1
        for name in RESULT_FILES + REPORT_FILES:
            if (self.out / name).is_file():
                (self.out / name).unlink()
                gone += 1
        return gone

    def claim(self, rec: dict, names, *, resume: bool, owner: bool = True) -> list[str]:
        """Make this folder the outputs of `rec`'s run for images `names`, or refuse (one
        `OutputError` / `record.RecordMismatch`, nothing changed):

        - a folder that exists and holds anything but no run record is refused (e.g. a
          dataset's own folder given as --out);
        - a file at a path this run would write whose name no record lists is refused;
        - --resume: the record must be this very run's (`record.check_resume`);
        - a fresh run made under another record removes that run's outputs (and only them).

        The earlier results go (this run writes its own at its end); the record is written
        listing the names (with those an equal earlier run made). Only the `owner` (rank 0)
        writes; every rank checks. Returns what differed from an earlier run ([]: none)."""
        out = self.out
        names = list(names)
        first: dict[str, str] = {}
        for n in names:
            check_name(n, n)
            if n.casefold() in first:
                raise OutputError(
                    f"{printable(self.label_path(n))}: two images of this run would write it "
                    f"(output names {printable(first[n.casefold()])!r} and {printable(n)!r}: "
                    f"an image listed twice, or names equal but for case or suffix; nothing "
                    f"was run)")
            first[n.casefold()] = n
        if out.exists() and not out.is_dir():
            raise OutputError(f"{printable(out)}: not a folder (--out)")
        saved = record.read(out)
        if saved is None and out.is_dir():
            temp = f".{record.NAME}."              # another rank writing the record
            entries = sorted(e.name for e in os.scandir(out)
                             if not (e.name.startswith(temp) and e.name.endswith(".tmp")))
            if entries:
                raise OutputError(
                    f"{printable(out)}: holds files this program did not write "
                    f"({len(entries)} entries, e.g. {printable(entries[0])!r}) and no record "
                    f"of a run of ours ({record.NAME}): give a new or empty folder as --out "
                    f"(nothing was changed)")
        owned = self.owned(saved)
        self.check_inside(owned | set(names))
        for n in names:
            if n in owned:
                continue
            for p in self.paths(n):
                if p.exists() or p.is_symlink():
                    raise OutputError(f"{printable(p)}: not written by this program (no run in "
                                      f"{record.NAME} lists it): refusing to replace it (give "
                                      f"another --out; nothing was changed)")
        if resume:
            record.check_resume(out, rec, bool(owned))
        diff = [] if saved is None else record.differences(saved, rec)
        if not owner:
            return diff
        self.remove_results()
        if diff:
            gone = self.remove(owned)
            owned = set()
            print(f"note: {printable(out)} held outputs of another run ({'; '.join(diff)}); "
                  f"replaced ({gone} files removed)", file=sys.stderr)
        record.write(out, {**rec, "outputs": sorted(owned | set(names))})
        return diff

    def unclaim(self) -> None:
        """Undo `claim` on a folder it made, once the run failed before any output: the
        record goes, and the folder if nothing else is in it (nothing of anyone's is lost)."""
        (self.out / record.NAME).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.out.rmdir()

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
