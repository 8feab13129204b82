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

import torch

from caffe_proto.cli import (EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_USAGE,  # noqa: F401
                             Formatter, UsageError, error_line, fraction, main,
                             nonnegative_float, nonnegative_int, parser, positive_float,
                             positive_int)

from .devices import device_problem


def device(text: str) -> str:
    """A torch device this machine has (cpu, cuda, cuda:N, mps), checked before any work:
    a typo or a missing GPU is a usage error, not a failure to read the model later."""
    problem = device_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r}{problem}")
    return text


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
