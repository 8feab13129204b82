"""The one convention of every command in the project (convert, export, inspect, eval, train).

Kept here, free of torch, so that ``caffe-inspect`` follows it too; commands that use torch
import it as `psp_torch.cli` (the same names, plus the --device type).

- ``--help`` shows every option with its default (`parser`).
- A usage error (unknown or impossible option, a number out of range) exits with status 2 and
  argparse's ``usage:`` line plus ``PROG: error: what``; the numeric `types` below reject bad
  values while parsing, so they never reach the work.
- A runtime error (a bad or missing file, a failed write, a model that does not fit) exits with
  status 1 and one line on stderr, ``error: FILE: what`` (`main`).
- Ctrl-C exits with status 130 and one line saying what was kept.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A usage error found after parsing (e.g. an option the model's metadata makes
    necessary): `main` prints ``error: what`` and exits with status 2."""


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each help text; the description keeps its line breaks.

    A help text that already says its default, a flag (default False) and an option without
    a default (None: the help says what happens then) get no "(default: ...)" appended."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def parser(prog: str, doc: str | None, **kw) -> argparse.ArgumentParser:
    """An ArgumentParser following the convention; the description is the docstring's first
    paragraph."""
    return argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0],
                                   formatter_class=Formatter, **kw)


def _number(kind: type, name: str, ok: Callable[[float], bool]):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not ok(value) or value != value:          # NaN is never in range
            raise argparse.ArgumentTypeError(f"{text!r} must be {name}")
        return value
    parse.__name__ = kind.__name__                   # argparse names the type in its messages
    return parse


positive_int = _number(int, "a positive integer (>= 1)", lambda v: v >= 1)
nonnegative_int = _number(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number(float, "a number > 0", lambda v: 0 < v < float("inf"))
nonnegative_float = _number(float, "a number >= 0", lambda v: 0 <= v < float("inf"))
fraction = _number(float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def error_line(exc: BaseException) -> str:
    """``error: FILE: what`` for an exception (OSError's file name put first)."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return f"error: {exc.filename}: {exc.strerror}"
    msg = str(exc).strip() or type(exc).__name__
    return "error: " + msg.splitlines()[0] if "\n" in msg and len(msg) > 400 else "error: " + msg


def main(work: Callable[[], int | None], *, interrupted: str = "interrupted",
         errors: tuple = (ValueError, OSError)) -> int:
    """Run ``work()`` under the convention: its return value (0 when None) is the status; one of
    ``errors`` -> one line, status 1; Ctrl-C -> one line ``interrupted``, status 130."""
    try:
        return work() or 0
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"error: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors as exc:
        print(error_line(exc), file=sys.stderr)
        return EXIT_RUNTIME
