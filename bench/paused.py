"""Run a command-line script with one function made to stop there and wait.

    python bench/paused.py MODULE:QUALNAME CALLS SCRIPT [ARGS ...]

After the function's CALLS-th call returns (0: as it is first entered) the child prints
``PAUSED MODULE:QUALNAME`` on stdout and reads one line from stdin. The parent waits for
that line (an event, not a clock) and then signals the child (SIGINT: the KeyboardInterrupt
rises from exactly that point of the real command; SIGKILL: a crash there) or writes a line
to let it go on. Used by the Ctrl-C tests and by soak_eval.py, so that "interrupted after
image 5" is a fact rather than a race between two processes.
"""
import functools
import importlib
import runpy
import sys


def _pause(where: str):
    print(f"PAUSED {where}", flush=True)
    sys.stdin.readline()                 # a line, or EOF when the parent is gone: go on


def main():
    target, calls, script, *args = sys.argv[1:]
    calls = int(calls)
    module, _, qualname = target.partition(":")
    owner = importlib.import_module(module)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    count = [0]

    @functools.wraps(original)
    def wrapper(*a, **kw):
        if calls == 0 and count[0] == 0:
            _pause(target)
        result = original(*a, **kw)
        count[0] += 1
        if count[0] == calls:
            _pause(target)
        return result

    setattr(owner, name, wrapper)
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
