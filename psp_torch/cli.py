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


# ---------------------------------------------------------------- network options as flags

def _tuple_of_ints(text: str) -> tuple:
    """Comma-separated integers; ``none`` (or nothing) is the empty tuple."""
    if text.strip().lower() in ("none", ""):
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers "
                                          f"(or 'none')") from None


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)


def add_options(group, options: dict, defaults: dict, only: str = "", kept: str = "") -> None:
    """One flag per network option (`psp_torch.config.options()`): ``--NAME`` (``--no-NAME``
    for a bool that is on by default), its type, choices and help from the field; the
    parsed value lands in ``args.NAME``, None when the flag is not given. `only` is appended
    to the help of the options that apply only to a network built from scratch, `kept` to
    the default of the others (what a model file does without the flag)."""
    for name, opt in options.items():
        default = defaults[name]
        flag = "--" + name.replace("_", "-")
        where = f" {only}" if only and opt.arch_only else ""
        otherwise = f"; {kept}" if kept and not opt.arch_only else ""
        if isinstance(default, bool):
            group.add_argument(f"--no-{flag[2:]}" if default else flag, dest=name,
                               action="store_const", const=not default, default=None,
                               help=f"{'without' if default else 'with'}: {opt.help}{where} "
                                    f"(default: {'with' if default else 'without'}{otherwise})")
            continue
        parse = opt.parse or (_tuple_of_ints if isinstance(default, tuple) else type(default))
        group.add_argument(flag, dest=name, type=parse, choices=opt.choices, default=None,
                           help=f"{opt.help}{where} (default: {_shown(default)}{otherwise})")


def given_options(args, options: dict) -> dict:
    """{name: value} of the network options given on the command line."""
    return {n: getattr(args, n) for n in options if getattr(args, n) is not None}
