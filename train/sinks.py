"""Where a training run's progress goes: a list of sinks, each one class (the trainer calls
every sink of the list; process 0 only).

- `JsonLog`: ``OUT/log.jsonl``, one JSON line per iteration (iter, lr, loss, main, aux,
  images_per_s); a fresh run starts it empty, a resumed one drops the lines after its
  checkpoint;
- `CurvesPng`: ``OUT/curves.png``, the losses and the validation mIoU (`train/plot.py`),
  redrawn at every checkpoint and at the end, from the log;
- `TensorBoard` (``--tensorboard DIR``): the same scalars as TensorBoard events
  (``torch.utils.tensorboard.SummaryWriter``; the ``tensorboard`` package, an optional extra:
  ``pip install -e ".[tensorboard]"``). A fresh run hides the events of an earlier run in
  DIR from step 1 on, a resumed one those after its checkpoint (TensorBoard's purge_step).

A sink hears, in order: ``start(resumed_at, val_points)`` (None for a fresh run; else the
iteration of the checkpoint and the validations before it), then ``iteration(row)`` per update
and ``validation(iteration, miou)``, ``flush()`` at every checkpoint and at the end, and
``close()``. Its ``path`` names what a failed write names. A new output is one more class.
"""
from __future__ import annotations

import json
from pathlib import Path

from psp_torch.io import atomic_write

from . import plot

LOG = "log.jsonl"
CURVES = "curves.png"
# TensorBoard tags of the log rows' fields and of the validation (one home: here)
SCALARS = {"loss": "train/loss", "main": "train/main", "aux": "train/aux", "lr": "train/lr",
           "images_per_s": "train/images_per_s"}
VAL_MIOU = "val/mIoU"
INSTALL = "pip install tensorboard, or the project's extra: pip install -e \".[tensorboard]\""


class Sink:
    """The events a sink hears; each does nothing unless a sink needs it."""
    path: Path

    def start(self, resumed_at: int | None, val_points: list) -> None:
        pass

    def iteration(self, row: dict) -> None:
        pass

    def validation(self, iteration: int, miou: float) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class JsonLog(Sink):
    def __init__(self, out: Path):
        self.path = Path(out) / LOG
        self._file = None

    def start(self, resumed_at, val_points):
        if resumed_at is None:               # a fresh run: no lines of an earlier, failed one
            self.path.unlink(missing_ok=True)
        elif self.path.exists():             # drop lines written after the checkpoint
            keep = [ln for ln in self.path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["iter"] <= resumed_at]
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(
                "".join(ln + "\n" for ln in keep)))

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(ln) for ln in self.path.read_text().splitlines() if ln.strip()]

    def iteration(self, row):
        if self._file is None:
            self._file = open(self.path, "a")
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


class CurvesPng(Sink):
    def __init__(self, out: Path, log: JsonLog):
        self.path = Path(out) / CURVES
        self.log, self.val_points = log, []

    def start(self, resumed_at, val_points):
        self.val_points = [list(p) for p in val_points]

    def validation(self, iteration, miou):
        self.val_points.append([iteration, miou])

    def flush(self):
        plot.write(self.path, self.log.rows(), self.val_points)


def tensorboard_problem() -> str | None:
    """Why --tensorboard cannot work here (None: it can)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return f"the tensorboard package is not installed ({INSTALL})"
    return None


class TensorBoard(Sink):
    def __init__(self, log_dir: Path):
        self.path = Path(log_dir)
        self._writer = None

    def start(self, resumed_at, val_points):
        from torch.utils.tensorboard import SummaryWriter
        # events at or after purge_step written before (an earlier or an interrupted run)
        # are dropped by TensorBoard when it reads the folder
        self._writer = SummaryWriter(str(self.path), purge_step=(resumed_at or 0) + 1)

    def iteration(self, row):
        for key, tag in SCALARS.items():
            if row.get(key) is not None:
                self._writer.add_scalar(tag, row[key], row["iter"])

    def validation(self, iteration, miou):
        self._writer.add_scalar(VAL_MIOU, miou, iteration)

    def flush(self):
        self._writer.flush()

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def make(out: Path, tensorboard: Path | None = None) -> list[Sink]:
    """The sinks of a run writing into `out` (and TensorBoard events into `tensorboard`)."""
    log = JsonLog(out)
    sinks: list[Sink] = [log, CurvesPng(out, log)]
    if tensorboard is not None:
        sinks.append(TensorBoard(tensorboard))
    return sinks
