"""checkpoint.pth: everything a run needs to go on exactly, as plain tensors and data.

    {"format": "pspnet-train-checkpoint/1",
     "iteration": updates done,
     "model": state_dict, "optimizer": state_dict, "scaler": state_dict | None,
     "rng": {"torch": [ByteTensor per rank], "cuda": [...] | None, "world": K},
     "recipe": {flag: value} (every setting that changes the numbers),
     "init_hash": sha256 of the model's initial weights (same init file, same seed),
     "val": [[iteration, mIoU], ...], "best_miou": float | None}

The data order and the augmentation are functions of (seed, iteration): no loader state is
stored. Read with ``weights_only=True``.

Two files, so that one bad file never loses a run (`Rotation`): ``checkpoint.pth`` (the newest)
and ``checkpoint.prev.pth`` (the one before). A save writes the new file beside them under a
temporary name and flushes it to the disk; only once it is complete does the newest become the
previous and the new file the newest (two renames). A failed write (a full disk) removes the
temporary file and leaves both as they were. A load checks every record of the file against
the CRC-32 that torch.save stores in its zip (torch.load itself does not: a flipped byte in a
tensor would load silently) and falls back on the previous file when the newest is truncated,
corrupt or missing.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import torch

from caffe_proto.printable import printable
from psp_torch.io import atomic_write, torch_complaint

FORMAT = "pspnet-train-checkpoint/1"
NAME = "checkpoint.pth"


class ResumeError(ValueError):
    """The checkpoint is not of this run (settings or initial model differ), or unreadable."""


def previous(path) -> Path:
    """checkpoint.pth -> checkpoint.prev.pth (beside it)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save(path, *, rotate: bool = True, **fields) -> Path:
    """Write the checkpoint `fields` to `path` (complete and flushed before it takes the name);
    with `rotate` the file that was at `path` becomes `previous(path)`. On a failed write (an
    OSError such as ENOSPC: raised, naming `path`) both files are left as they were."""
    path = Path(path)
    payload = {"format": FORMAT, **fields}

    def write(tmp):
        with open(tmp, "wb") as f:       # through Python's file: a full disk is an OSError
            try:
                torch.save(payload, f)
            except RuntimeError as exc:  # torch's zip writer, failing again on its way out
                raise _os_error(exc) or exc
            f.flush()
            os.fsync(f.fileno())
        if rotate and path.exists():
            os.replace(path, previous(path))

    try:
        return atomic_write(path, write)
    except OSError as exc:
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from None


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError (ENOSPC ...) behind an exception, if one is in its chain."""
    while exc is not None:
        if isinstance(exc, OSError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _damage(path) -> str | None:
    """Why the file is not an intact torch zip (truncated, a record's CRC wrong), or None."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, EOFError) as exc:
        return f"truncated or not a torch file: {exc}"
    except (OSError, ValueError, RuntimeError) as exc:     # zipfile raises these on bad headers
        return f"damaged: {exc}"
    return f"corrupt: record {bad} fails its CRC-32" if bad else None


def load(path) -> dict:
    """The checkpoint at `path`, checked intact and of this format; ResumeError naming the file
    and what is wrong otherwise."""
    damage = _damage(path)
    if damage:
        raise ResumeError(f"{path}: not a readable checkpoint ({damage})")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:                # RecursionError included
        raise ResumeError(f"{path}: not a readable checkpoint ({torch_complaint(exc)})") \
            from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ResumeError(f"{path}: not a checkpoint of train/run.py (format {FORMAT!r})")
    check_fields(ckpt, path)
    return ckpt


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _tensors(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(t, torch.Tensor)
                                       for k, t in v.items())


def _byte_tensors(v) -> bool:
    return isinstance(v, (list, tuple)) and all(
        isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.dim() == 1 for t in v)


def _rng(v) -> bool:
    return (isinstance(v, dict) and _int(v.get("world")) and v["world"] >= 1
            and _byte_tensors(v.get("torch")) and len(v["torch"]) == v["world"]
            and (v.get("cuda") is None or _byte_tensors(v["cuda"])))


def _val(v) -> bool:
    return isinstance(v, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and _int(p[0])
        and isinstance(p[1], (int, float)) and not isinstance(p[1], bool) for p in v)


# every field a resume reads, and what it must hold (the module doc's layout)
FIELDS = {
    "iteration": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "model": (_tensors, "a state_dict (names -> tensors)"),
    "optimizer": (lambda v: isinstance(v, dict) and isinstance(v.get("state"), dict)
                  and isinstance(v.get("param_groups"), list), "an optimizer state_dict"),
    "scaler": (lambda v: v is None or isinstance(v, dict), "a GradScaler state_dict or None"),
    "rng": (_rng, "{torch: [uint8 tensor per process], cuda, world}"),
    "recipe": (lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v)
               and _int(v.get("iters")), "the run's settings (with iters)"),
    "init_hash": (lambda v: isinstance(v, str), "a sha256 string"),
    "val": (_val, "a list of [iteration, mIoU]"),
    "best_miou": (lambda v: v is None or (isinstance(v, (int, float))
                                          and not isinstance(v, bool)), "a number or None"),
}


def check_fields(ckpt: dict, path) -> None:
    """Every field a resume reads is there and of its type, and the iteration is within the
    run's own --iters; ResumeError naming the file and the first field that is not."""
    for name, (ok, what) in FIELDS.items():
        if name not in ckpt:
            raise ResumeError(f"{path}: not a complete checkpoint: it has no field {name!r}")
        if not ok(ckpt[name]):
            raise ResumeError(f"{path}: field {name!r} is {type(ckpt[name]).__name__} "
                              f"{printable(repr(ckpt[name]), 40)}, not {what}")
    if ckpt["iteration"] > ckpt["recipe"]["iters"]:
        raise ResumeError(f"{path}: iteration {ckpt['iteration']} is past the run's own "
                          f"--iters {ckpt['recipe']['iters']}: no run writes that; not a "
                          f"checkpoint to resume")


class Rotation:
    """OUT/checkpoint.pth and OUT/checkpoint.prev.pth of one run.

    `load` takes the newest readable one (one warning line through `warn` when it had to fall
    back on the previous one); `save` rotates, except right after such a fall-back: the bad
    newest file is then replaced, so that the previous one stays the good file it is.
    `good` and `saved_at`: the last good checkpoint (written or loaded) and its iteration."""

    def __init__(self, out):
        self.newest = Path(out) / NAME
        self.prev = previous(self.newest)
        self.saved_at: int | None = None
        self.good: Path | None = None
        self._newest_bad = False

    def exists(self) -> bool:
        return self.newest.exists() or self.prev.exists()

    def load(self, warn) -> tuple[Path, dict]:
        problems = []
        for path in (self.newest, self.prev):
            if not path.exists():
                problems.append(f"{path}: missing")
                continue
            try:
                ckpt = load(path)
            except ResumeError as exc:
                problems.append(str(exc))
                continue
            if problems:
                warn(f"warning: {problems[0]}; going on from the previous checkpoint {path}")
                self._newest_bad = True
            self.saved_at, self.good = int(ckpt["iteration"]), path
            return path, ckpt
        if not self.newest.exists() and not self.prev.exists():
            raise FileNotFoundError(2, "no checkpoint to resume from", str(self.newest))
        raise ResumeError("; ".join(problems) + " (nothing was changed)")

    def save(self, iteration: int, **fields) -> Path:
        path = save(self.newest, rotate=not self._newest_bad, iteration=iteration, **fields)
        self._newest_bad = False
        self.saved_at, self.good = iteration, path
        return path

    def last_good(self) -> str:
        """The last good checkpoint, in words, for an error line."""
        if self.saved_at is None:
            return "no checkpoint was written yet"
        return f"the last good checkpoint is {self.good} (iteration {self.saved_at})"


def check_same_run(path, ckpt: dict, recipe: dict, init_hash: str) -> None:
    """Refuse a resume whose settings or initial model differ, naming them."""
    old = ckpt["recipe"]
    changed = [f"--{printable(k.replace('_', '-'), 60)} {printable(repr(old.get(k)), 80)} -> "
               f"{recipe.get(k)!r}"
               for k in sorted(set(old) | set(recipe)) if old.get(k) != recipe.get(k)]
    if changed:
        more = f" (and {len(changed) - 5} more)" if len(changed) > 5 else ""
        raise ResumeError(f"{path}: the checkpoint was written with other settings; refusing "
                          f"to resume with changed " + ", ".join(changed[:5]) + more)
    if ckpt["init_hash"] != init_hash:
        raise ResumeError(f"{path}: the initial model differs from the checkpoint's (weights "
                          f"hash {init_hash[:12]} vs {printable(ckpt['init_hash'][:12])}: "
                          f"another --init "
                          f"file or --init-backbone); refusing to resume")
