"""Run a command-line script with a fault injected at an exact call of one function.

    python tests/faulty.py MODULE:QUALNAME CALL ACTION WHEN SCRIPT [ARGS ...]

ACTION:
  pause  after the CALL-th call returns (CALL 0: as the function is first entered) the child
         prints ``PAUSED MODULE:QUALNAME`` on stdout and reads one line from stdin (EOF: the
         parent is gone, go on). The parent waits for that line (an event, not a clock), then
         signals the child (SIGINT: the KeyboardInterrupt rises from exactly that point of the
         real command; SIGTERM; SIGKILL: a crash there) or writes a line to let it go on;
  kill   after the CALL-th call returns, the process kills itself with SIGKILL (a worker that
         dies hard: no handler, no clean-up);
  nan    before the CALL-th call, one element of the first floating parameter of the call's
         first argument (the net, for train_step) becomes NaN (a run whose loss is NaN there);
  nan-after  the same after the CALL-th call returns (an update that overflowed: the loss,
         computed before it, is finite).
WHEN: "always", or conditions on the environment such as "RANK=1,TORCHELASTIC_RESTART_COUNT=0"
(unset RANK / TORCHELASTIC_RESTART_COUNT count as 0): under torchrun the fault hits one worker
of the first launch only. The function is replaced before SCRIPT runs (so a module that imports
it by name gets the replacement too). The one fault injector of the project: the Ctrl-C, SIGTERM
and fault tests and bench/soak_eval.py use it.
"""
import functools
import importlib
import os
import runpy
import signal
import sys

DEFAULTS = {"RANK": "0", "TORCHELASTIC_RESTART_COUNT": "0"}
ACTIONS = ("pause", "kill", "nan", "nan-after")


def applies(when: str) -> bool:
    if when == "always":
        return True
    conds = dict(c.split("=", 1) for c in when.split(","))
    return all(os.environ.get(k, DEFAULTS.get(k, "")) == v for k, v in conds.items())


def pause(where: str):
    print(f"PAUSED {where}", flush=True)
    sys.stdin.readline()                 # a line, or EOF when the parent is gone: go on


def poison(net):
    import torch
    param = next(p for p in net.parameters() if p.is_floating_point())
    with torch.no_grad():
        param.view(-1)[0] = float("nan")


def main():
    target, call, action, when, script, *args = sys.argv[1:]
    call = int(call)
    if action not in ACTIONS:
        sys.exit(f"faulty.py: unknown action {action!r} ({', '.join(ACTIONS)})")
    module, _, qualname = target.partition(":")
    owner = importlib.import_module(module)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    count = [0]
    armed = applies(when)

    @functools.wraps(original)
    def wrapper(*a, **kw):
        if armed and action == "pause" and call == 0 and count[0] == 0:
            pause(target)
        count[0] += 1
        hit = armed and count[0] == call
        if hit and action == "nan":
            poison(a[0])
        result = original(*a, **kw)
        if hit and action == "nan-after":
            poison(a[0])
        if hit and action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if hit and action == "pause":
            pause(target)
        return result

    setattr(owner, name, wrapper)
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
