"""Running a command line on a crafted input the way a stranger's file would reach it.

Every hostile-input test runs the real script in a child process under an address-space
limit (``RLIMIT_AS``), so a file that makes the program ask for gigabytes fails the test by
its exit status and stderr instead of exhausting the machine running the suite. A genuine
input of the sizes the tests use stays far below the limit (the child imports torch, numpy,
OpenCV and h5py well inside 2 GiB).

    r = hostile.run(["converter/convert.py", bad, "-o", out], cwd=tmp_path)
    hostile.assert_one_line(r, bad.name, "external")
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 3 * 2**30     # bytes of address space the child may map


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"),   # tests: standin
                                         env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(args, cwd, memory: int = MEMORY_LIMIT, timeout: float = 600,
        stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """`python ARGS` in `cwd` under an address-space limit of `memory` bytes; stdout and
    stderr decoded as written. Script paths are taken relative to the project root when they
    name one of its files. The timeout only guards against a hang."""
    args = [str(ROOT / a) if isinstance(a, str) and (ROOT / a).is_file() and a.endswith(".py")
            else str(a) for a in args]

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    r = subprocess.run([sys.executable, *args], cwd=cwd, env=_env(), capture_output=True,
                       timeout=timeout, preexec_fn=limit, input=stdin)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(errors="replace"),
                                       r.stderr.decode(errors="replace"))


def message_lines(stderr: str) -> list[str]:
    """What a terminal ends up showing: a progress bar's "\\r" redraws count once."""
    lines = [ln.split("\r")[-1] for ln in stderr.strip().split("\n")]
    return [ln for ln in lines if ln.strip()]


def assert_one_line(r: subprocess.CompletedProcess, *mentions: str, status: int = 1):
    """Exit `status`, no traceback, and one `error: ...` line naming each of `mentions`."""
    assert r.returncode == status, (f"expected status {status}, got {r.returncode}; "
                                    f"stderr:\n{r.stderr[-3000:]}")
    assert "Traceback" not in r.stderr, f"traceback instead of a message:\n{r.stderr[-3000:]}"
    errors = [ln for ln in message_lines(r.stderr) if ln.startswith("error:")]
    assert len(errors) == 1, f"expected one error line:\n{r.stderr[-3000:]}"
    for m in mentions:
        assert m in errors[0], f"the error line does not name {m!r}: {errors[0]}"
    assert "weights_only=False" not in r.stderr, "a message recommends unpickling"
    return errors[0]


def files_under(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in Path(d).rglob("*") if p.is_file()}
