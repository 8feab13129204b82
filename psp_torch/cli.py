"""The project's CLI convention (`caffe_proto.cli`, re-exported here) plus what needs torch:
the --device type, checked while parsing so that a typo or a missing GPU is a usage error
before any work.

- ``--help`` shows every option with its default (`parser`).
- A usage error exits with status 2 (argparse's ``usage:`` line and ``PROG: error: what``,
  or ``error: what`` for one found after parsing: `UsageError`).
- A runtime error (a bad or missing file, a failed write) exits with status 1 and one line
  on stderr, ``error: FILE: what`` (`main`).
- Ctrl-C exits with status 130 and one line saying what was kept.
"""
from __future__ import annotations

import argparse

from caffe_proto.cli import (EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_USAGE,  # noqa: F401
                             Formatter, UsageError, error_line, fraction, main,
                             nonnegative_float, nonnegative_int, parser, positive_float,
                             positive_int)


def device(text: str) -> str:
    """A torch device this machine has (cpu, cuda, cuda:N, mps), checked before any work:
    a typo or a missing GPU is a usage error, not a failure to read the model later."""
    import torch
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a device (use cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else \
                f"built for CUDA {torch.version.cuda}, but no GPU is visible"
            raise argparse.ArgumentTypeError(
                f"{text!r}: no CUDA device here (torch {torch.__version__} is {build}); "
                f"use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(
                f"{text!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                    and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError(f"{text!r}: no MPS device here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r}: unsupported device type {dev.type!r} "
                                         f"(use cpu, cuda, cuda:N or mps)")
    return text


def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"
