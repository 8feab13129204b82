"""What clusters do to a long run, and what the run does about each (train/README.md,
"Surviving faults"). The trainer calls these; none of them reads a clock.

- Preemption (`Stop`): SIGTERM (SLURM, Kubernetes, torchrun's shutdown; SIGKILL follows after a
  grace period) or Ctrl-C (SIGINT): the iteration is finished, a checkpoint written, one line
  said, and the run exits with `EXIT_TERMINATED` (143 = 128 + SIGTERM, the shell's own code for
  it) or `EXIT_INTERRUPTED` (130). A second signal stops at once (the last checkpoint stays).
- Cadence (`Cadence`): a checkpoint every N iterations and every M minutes of the trainer's
  clock, whichever comes first.
- Elastic restarts (`resuming`): `torchrun --max-restarts=N` relaunches the whole worker group
  with the same command line and TORCHELASTIC_RESTART_COUNT = 1, 2, ...; the relaunched workers
  go on from the last checkpoint as if --resume had been given (and meet in a store of their
  own launch: `psp_torch.runtime.elastic_store`).
- Divergence (`check_finite`): a non-finite loss or weight after an iteration stops the run
  with the iteration's number and the last good checkpoint, before any checkpoint or model file
  is written from those weights.
- Failed writes (`write_failure`): a full disk (or any OSError) while writing a checkpoint, the
  log or a model gives one line naming the file and the last good checkpoint, which is left
  loadable (`checkpoint.Rotation`).
"""
from __future__ import annotations

import math
import os
import signal
from contextlib import contextmanager
from itertools import chain

import torch

from psp_torch.cli import EXIT_INTERRUPTED

EXIT_TERMINATED = 128 + signal.SIGTERM     # 143


class Stop:
    """SIGINT / SIGTERM while inside: remember which (`signum`); the loop finishes the
    iteration, writes a checkpoint and exits with `status`."""

    def __init__(self):
        self.signum: int | None = None
        self._old = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:      # a second signal: stop now (the last checkpoint stays)
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)

    def flags(self) -> list[int]:
        """[SIGINT seen, SIGTERM seen], to be summed over the processes."""
        return [int(self.signum == signal.SIGINT), int(self.signum == signal.SIGTERM)]


def stop_status(flags) -> int:
    """The exit status of a stop agreed over the processes (SIGTERM wins: the scheduler's)."""
    return EXIT_TERMINATED if flags[1] > 0 else EXIT_INTERRUPTED


def stop_line(status: int, iteration: int, iters: int, path) -> str:
    what = "terminated (SIGTERM)" if status == EXIT_TERMINATED else "interrupted"
    return (f"{what}: checkpoint written at iteration {iteration} of {iters} ({path}); "
            f"--resume goes on")


class Cadence:
    """A checkpoint every `every` iterations and, with `minutes` > 0, once `minutes` have passed
    since the last one. `now` is seconds of the trainer's clock (time.monotonic()), given."""

    def __init__(self, every: int, minutes: float, now: float):
        self.every, self.seconds, self.last = every, 60.0 * minutes, now

    def by_iteration(self, iteration: int) -> bool:
        return iteration % self.every == 0

    def by_clock(self, now: float) -> bool:
        return self.seconds > 0 and now - self.last >= self.seconds

    def saved(self, now: float) -> None:
        self.last = now


def restart_count() -> int:
    """torchrun's relaunch count of this worker group (0: the first launch, or no torchrun)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT") or 0)


def resuming(asked: bool, rotation) -> bool:
    """--resume, or a relaunch by torchrun (--max-restarts) with a checkpoint to go on from (a
    relaunch before the first checkpoint starts afresh)."""
    return asked or (restart_count() > 0 and rotation.exists())


class Diverged(FloatingPointError):
    """A non-finite loss or weight."""


def nonfinite(module: torch.nn.Module) -> list[str]:
    """Names of the floating parameters and buffers holding a NaN or an infinity (one device
    synchronisation)."""
    named = [(n, t) for n, t in chain(module.named_parameters(), module.named_buffers())
             if t.is_floating_point()]
    if not named:
        return []
    ok = torch.stack([torch.isfinite(t.detach()).all() for _, t in named])
    if bool(ok.all()):
        return []
    return [n for (n, _), good in zip(named, ok.tolist()) if not good]


def check_finite(loss: float, module: torch.nn.Module, iteration: int, last_good: str) -> None:
    """Diverged (one line: the iteration, what, the last good checkpoint) unless the loss and
    every weight are finite after `iteration`."""
    if not math.isfinite(loss):
        what = f"loss is {loss} at iteration {iteration}"
    else:
        bad = nonfinite(module)
        if not bad:
            return
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        what = f"non-finite weights after iteration {iteration} ({bad[0]}{more})"
    raise Diverged(f"{what}: the run stops (lower --lr?), nothing is written from these "
                   f"weights; {last_good}")


@contextmanager
def write_failure(path, last_good):
    """An OSError inside (ENOSPC, EDQUOT, EIO ...) -> one line naming the file and what is
    kept. `last_good()` says which checkpoint that is."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, f"{exc.strerror or exc}: not written; {last_good()}, "
                      f"--resume goes on from it once the cause is fixed",
                      str(exc.filename or path)) from None
