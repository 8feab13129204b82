"""checkpoint.pth: everything a run needs to go on exactly, as plain tensors and data.

    {"format": "pspnet-train-checkpoint/1",
     "iteration": updates done,
     "model": state_dict, "optimizer": state_dict, "scaler": state_dict | None,
     "rng": {"torch": [ByteTensor per rank], "cuda": [...] | None, "world": K},
     "recipe": {flag: value} (every setting that changes the numbers),
     "init_hash": sha256 of the model's initial weights (same init file, same seed),
     "val": [[iteration, mIoU], ...], "best_miou": float | None}

The data order and the augmentation are functions of (seed, iteration): no loader state is
stored. Written atomically (`psp_torch.io.atomic_write`), read with ``weights_only=True``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from psp_torch.io import atomic_write

FORMAT = "pspnet-train-checkpoint/1"


class ResumeError(ValueError):
    """The checkpoint is not of this run (settings or initial model differ)."""


def save(path, **fields) -> Path:
    return atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **fields}, tmp))


def load(path) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ResumeError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0]})") \
            from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ResumeError(f"{path}: not a checkpoint of train/run.py (format {FORMAT!r})")
    return ckpt


def check_same_run(path, ckpt: dict, recipe: dict, init_hash: str) -> None:
    """Refuse a resume whose settings or initial model differ, naming them."""
    old = ckpt["recipe"]
    changed = [f"--{k.replace('_', '-')} {old.get(k)!r} -> {recipe.get(k)!r}"
               for k in sorted(set(old) | set(recipe)) if old.get(k) != recipe.get(k)]
    if changed:
        raise ResumeError(f"{path}: the checkpoint was written with other settings; refusing "
                          f"to resume with changed " + ", ".join(changed))
    if ckpt["init_hash"] != init_hash:
        raise ResumeError(f"{path}: the initial model differs from the checkpoint's (weights "
                          f"hash {init_hash[:12]} vs {ckpt['init_hash'][:12]}: another --init "
                          f"file or --init-backbone); refusing to resume")
