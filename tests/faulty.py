"""Run a command-line script with a fault injected at an exact call of one function.

    python tests/faulty.py MODULE:QUALNAME CALL ACTION WHEN SCRIPT [ARGS ...]

ACTION:
  kill  after the CALL-th call returns, the process kills itself with SIGKILL (a worker that
        dies hard: no handler, no clean-up);
  nan   before the CALL-th call, one element of the first floating parameter of the call's first
        argument (the net, for train_step) becomes NaN (a run whose loss is NaN there);
  nan-after  the same after the CALL-th call returns (an update that overflowed: the loss,
        computed before it, is finite).
WHEN: "always", or conditions on the environment such as "RANK=1,TORCHELASTIC_RESTART_COUNT=0"
(unset RANK / TORCHELASTIC_RESTART_COUNT count as 0): under torchrun the fault hits one worker
of the first launch only. The function is replaced before SCRIPT runs (so a module that imports
it by name gets the replacement too). Used by tests/test_train_faults.py.
"""
import functools
import importlib
import os
import runpy
import signal
import sys

import torch

DEFAULTS = {"RANK": "0", "TORCHELASTIC_RESTART_COUNT": "0"}


def applies(when: str) -> bool:
    if when == "always":
        return True
    conds = dict(c.split("=", 1) for c in when.split(","))
    return all(os.environ.get(k, DEFAULTS.get(k, "")) == v for k, v in conds.items())


def main():
    target, call, action, when, script, *args = sys.argv[1:]
    call = int(call)
    if action not in ("kill", "nan", "nan-after"):
        sys.exit(f"faulty.py: unknown action {action!r} (kill, nan, nan-after)")
    module, _, qualname = target.partition(":")
    owner = importlib.import_module(module)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    count = [0]
    armed = applies(when)

    def poison(net):
        param = next(p for p in net.parameters() if p.is_floating_point())
        with torch.no_grad():
            param.view(-1)[0] = float("nan")

    @functools.wraps(original)
    def wrapper(*a, **kw):
        count[0] += 1
        hit = armed and count[0] == call
        if hit and action == "nan":
            poison(a[0])
        result = original(*a, **kw)
        if hit and action == "nan-after":
            poison(a[0])
        if hit and action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
