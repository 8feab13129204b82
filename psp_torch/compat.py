"""Which torch this is, and what needs a newer one: the project's only version checks.

The model, its Caffe arithmetic, conversion, evaluation and training run on every torch
from pyproject.toml's floor (README "Tested with"). A few features need a newer torch; each
says so in one line where it is asked for, and nothing else is touched:

- `EXPORT`: ``torch.export`` with N, H, W dynamic and size-oblivious reasoning
  (`psp_torch.tracing`);
- `ONNX`: the dynamo-based ONNX exporter with a custom translation table
  (converter/onnx_export.py, ``export.py --onnx``);
- `COMPILE`: ``torch.compile`` of the faithful forward (`psp_torch.compiled`,
  ``psp_torch.load(..., compile=True)``, ``eval/run.py --compile``);
- `GRAD_SCALER`: ``torch.amp.GradScaler`` for any device (``train/run.py --amp fp16``).

Where the minimums come from: torch.export with dynamic sizes needs torch.fx's
``backed_size_oblivious`` (`psp_torch.tracing`), in torch's sources from 2.7 on (not in
2.6.0); but at 2.7.1 the export of this forward still fails (dynamo cannot inline the
generator in `psp_torch.layers.pooling.pool2d`'s pad check, README "Tested with"), and it
passes at 2.13.0 (CI): 2.13 for the export and the ONNX export (the releases between were
not measured). The compiled forward's tests passed at 2.7.1: 2.7. ``torch.amp.GradScaler``
came with 2.3 (torch 2.1 and 2.2 have only the CUDA one).
Two helpers of the layers that an older torch lacks have their fallback where they are used
(`psp_torch.layers.sizes`: the layers import nothing outside psp_torch.layers).
"""
from __future__ import annotations

import re

import torch


def release(text: str) -> tuple[int, int, int]:
    """(major, minor, patch) of a version string ("2.13.0+cpu" -> (2, 13, 0))."""
    parts = [int(p) for p in re.findall(r"\d+", text.split("+")[0])[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


VERSION = torch.__version__
INSTALLED = release(VERSION)

# feature -> the oldest torch it runs on
EXPORT = "torch.export with dynamic sizes"
ONNX = "the ONNX export"
COMPILE = "torch.compile of the model"
GRAD_SCALER = "--amp fp16 (torch.amp.GradScaler)"
MINIMUM = {EXPORT: (2, 13, 0), ONNX: (2, 13, 0), COMPILE: (2, 7, 0), GRAD_SCALER: (2, 3, 0)}


class TorchTooOld(ValueError):
    """A feature needs a newer torch than the installed one (message: one line; a ValueError,
    so that the CLIs print it as their one ``error:`` line)."""


def _text(version: tuple) -> str:
    return ".".join(str(v) for v in (version[:2] if version[2] == 0 else version))


def too_old(feature: str) -> str | None:
    """``FEATURE needs torch >= X (installed Y)``, or None when the installed torch has it."""
    need = MINIMUM[feature]
    if INSTALLED >= need:
        return None
    return f"{feature} needs torch >= {_text(need)} (installed {VERSION})"


def require(feature: str) -> None:
    """Raise TorchTooOld (one line) when the installed torch lacks `feature`."""
    problem = too_old(feature)
    if problem:
        raise TorchTooOld(problem)

