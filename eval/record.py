"""What made a run folder: ``OUT/run.json``, written before the first image, checked by --resume.

A finished image's label PNG is only reusable by a run that would have predicted the same
PNG: same model bytes, same dataset and split, same protocol settings. The record holds
exactly those facts:

    {"format": "pspnet_caffe.eval.run/1",
     "model": {"sha256": ..., "from": "X.pth" | "MODULE:CALLABLE"},
     "dataset": ..., "split": ...,
     "settings": every field of protocol.Settings not exempt from its identity (batch: how
                 many windows share a network call), with the device reduced to its kind
                 (cpu / cuda: float summation differs between them)}

`model.from` is informative (a moved file is the same model); everything else must match. A
record written before a setting existed reads as that setting's default (e.g. ``compile``:
false), so older run folders stay resumable by the runs that made them.

The record also lists the folder's outputs, ``"outputs"``: every image name a run of this
record planned (`outputs.Writer.claim`); the program replaces or removes no other file. It is
no part of the run's identity.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from psp_torch.identity import IDENTITY, identity_fields
from psp_torch.io import atomic_write

from .protocol import Settings

FORMAT = "pspnet_caffe.eval.run/1"
NAME = "run.json"
NOT_IDENTITY = ("model.from", "outputs")   # informative, and the list of files written
MAX_BYTES = 256 * 2**20            # a record above this is no record of ours
DEFAULTS = json.loads(json.dumps({f.name: f.default for f in dataclasses.fields(Settings)
                                  if f.default is not dataclasses.MISSING}))


class RecordMismatch(ValueError):
    """--resume on a folder made by another model or other settings (message says what)."""


def make(model_sha256: str, model_from: str, dataset: str, split: str, settings) -> dict:
    fields = identity_fields(settings, IDENTITY)
    if "device" in fields:
        fields["device"] = str(fields["device"]).split(":")[0]
    return {"format": FORMAT, "model": {"sha256": model_sha256, "from": str(model_from)},
            "dataset": dataset, "split": split, "settings": fields}


def differences(saved: dict, current: dict) -> list[str]:
    """'what: saved X, now Y' for every fact that differs (model.from excepted)."""
    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            key = f"{prefix}{k}"
            if key in NOT_IDENTITY:
                continue
            if isinstance(v, dict):
                out.update(flat(v, key + "."))
            else:
                out[key] = v
        return out
    a, b = flat(_with_defaults(saved, current)), flat(current)
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            lines.append(f"{key}: saved {_short(a.get(key, '<absent>'))}, "
                         f"now {_short(b.get(key, '<absent>'))}")
    return lines


def _with_defaults(saved: dict, current: dict) -> dict:
    """`saved` with the settings it lacks (written before they existed) at their defaults."""
    settings = saved.get("settings")
    if not isinstance(settings, dict):
        return saved
    missing = {k: DEFAULTS[k] for k in current.get("settings", {})
               if k not in settings and k in DEFAULTS}
    return {**saved, "settings": {**settings, **missing}}


def _short(v) -> str:
    return f"{v[:12]}..." if isinstance(v, str) and len(v) == 64 else json.dumps(v)


def read(out: Path) -> dict | None:
    path = Path(out) / NAME
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ValueError(f"larger than {MAX_BYTES:,} bytes")
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordMismatch(f"{path}: unreadable run record ({exc}); nothing was changed "
                             f"(give another --out)") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise RecordMismatch(f"{path}: not a run record of eval/run.py (format {FORMAT}); "
                             f"nothing was changed (give another --out)")
    return saved


def write(out: Path, record: dict) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1) + "\n"
    return atomic_write(out / NAME, lambda tmp: Path(tmp).write_text(text))


def check_resume(out: Path, record: dict, has_outputs: bool) -> None:
    """Raise RecordMismatch unless the folder's outputs were made by `record`'s run."""
    saved = read(out)
    path = Path(out) / NAME
    if saved is None:
        if has_outputs:
            raise RecordMismatch(
                f"{path}: missing: the outputs in {out} carry no record of the model and "
                f"settings that made them, so --resume cannot reuse them (drop --resume to "
                f"replace them, or use another --out)")
        return
    diff = differences(saved, record)
    if diff:
        raise RecordMismatch(
            f"{path}: --resume refused: this folder was made by another run ("
            + "; ".join(diff) + "); drop --resume to replace its outputs, or use another --out")
