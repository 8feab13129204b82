"""Which Python x torch (x numpy, protobuf, OpenCV, ONNX Runtime) the project runs on: made
and recorded by hand, never in CI (an install is gigabytes, a full suite ~15 minutes).

    python tools/compat.py run --python 3.11 --torch 2.14.1              # the README's tests
    python tools/compat.py run --python 3.10 --torch 2.4.1 --numpy "<2" \\
        --tests tests/test_layers.py tests/test_oracle_nets.py          # a selection
    python tools/compat.py table --write                                # README "Tested with"

`run` makes a fresh venv under --workdir with that Python, installs ``torch==VERSION``, the
given pins and the project (``-e .[test]`` of a copy of the committed tree, HEAD: the
working tree may change while the tests run; the commit is recorded) in one pip resolution, checks that the package
imports, runs the README's test command (the ``python -m pytest`` line of "Set up and test";
with --tests, that command on the given files instead, recorded as a selection), and records
the outcome in tools/compat.json: the versions pip actually installed, passed / failed /
skipped counts, the failing tests' names, the date, and exactly what ran. A new record
replaces the one of the same environment and selection. The venv is deleted afterwards
(--keep keeps it).

`table` renders compat.json as the markdown table of README "Tested with" (--write puts
it between the README's markers; --check exits 1 when the README's table is stale).

Everything the project declares (pyproject's torch floor and requires-python, the
classifiers) must be a row here that passed: tests/test_compat_table.py checks it.

Pip runs with this machine's pip configuration; a local cap on versions is lifted with
``PIP_CONSTRAINT=/dev/null`` in the environment, a download cache is given with
``--pip-arg=--find-links=DIR``. Run it under ``nice -n 19`` on a shared machine.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "tools" / "compat.json"
README = ROOT / "README.md"
BEGIN, END = "<!-- tested-with: begin (tools/compat.py table --write) -->", "<!-- tested-with: end -->"

# pins a run can give, and the distribution each names (the recorded version is read back
# from the venv, whatever the pin was)
PINS = {"numpy": "numpy", "protobuf": "protobuf", "opencv": "opencv-python-headless",
        "onnxruntime": "onnxruntime", "onnx": "onnx", "onnxscript": "onnxscript"}
REPORTED = ["torch", "numpy", "protobuf", "opencv-python-headless", "onnxruntime", "onnx",
            "onnxscript", "safetensors"]
IMPORTS = ("import psp_torch, caffe_proto, pspnet_caffe.converter.convert, "
           "pspnet_caffe.eval.run, pspnet_caffe.train.run")


def readme_test_command(text: str | None = None) -> list[str]:
    """The README's test command (the first ``python -m pytest`` line), as arguments."""
    text = README.read_text() if text is None else text
    for line in text.splitlines():
        if line.strip().startswith("python -m pytest"):
            return shlex.split(line.strip())
    raise SystemExit("error: README.md: no 'python -m pytest' line (the test command)")


def find_python(version: str) -> str:
    """An interpreter: a path as given, else pythonX.Y on PATH, else pyenv's newest X.Y."""
    if os.sep in version:
        return version
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python")),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("versions")[-1])])
    if found:
        return found[-1]
    on_path = shutil.which(f"python{version}")
    if on_path:
        return on_path
    raise SystemExit(f"error: no Python {version} here (pyenv: {root}; PATH)")


def _step(cmd: list[str], log, **kw) -> subprocess.CompletedProcess:
    print("$", shlex.join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    log.write(f"$ {shlex.join(cmd)}\n{r.stdout}\n{r.stderr}\n")
    log.flush()
    return r


def _last_line(r: subprocess.CompletedProcess) -> str:
    lines = [x for x in (r.stderr + r.stdout).splitlines() if x.strip()]
    return lines[-1].strip() if lines else f"exit status {r.returncode}"


def installed(py: str, log, backend: str | None = None) -> dict:
    """The versions in the venv (and the protobuf backend a process gets there)."""
    code = ("import importlib.metadata as m, json, platform\n"
            f"out = {{'python': platform.python_version()}}\n"
            f"for d in {REPORTED!r}:\n"
            "    try: out[d] = m.version(d)\n"
            "    except m.PackageNotFoundError: pass\n"
            "try:\n"
            "    from google.protobuf.internal import api_implementation as a\n"
            "    out['protobuf backend'] = a.Type()\n"
            "except Exception: pass\n"
            "print(json.dumps(out))")
    r = _step([py, "-c", code], log, env=_env(backend))
    return json.loads(r.stdout) if r.returncode == 0 else {}


_BACKEND = "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"


def _env(backend: str | None = None) -> dict:
    env = dict(os.environ)
    if backend:
        env[_BACKEND] = backend
    return env


def junit_outcome(path: Path) -> dict:
    """passed / failed / errors / skipped and the failing tests' ids, from pytest's junit xml."""
    counts = dict(passed=0, failed=0, errors=0, skipped=0)
    failing = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = {child.tag for child in case}
        if "failure" in kinds or "error" in kinds:
            counts["failed" if "failure" in kinds else "errors"] += 1
            failing.append(name)
        elif "skipped" in kinds:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return dict(counts, failing=failing)


def _slug(spec: str) -> str:
    for sign, word in (("<=", "le"), (">=", "ge"), ("<", "lt"), (">", "gt"), ("==", ""), ("!=", "ne")):
        spec = spec.replace(sign, word)
    return re.sub(r"[^0-9A-Za-z.]", "", spec)


def _snapshot(src: Path, commit: str) -> None:
    """`src` := the committed tree at `commit`, not the working one (which may change while
    the tests run). The path stays the same, so an editable install of it stays valid."""
    if src.exists():
        shutil.rmtree(src)
    src.mkdir()
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)


def _install(python, venv, src, commit, pins, args, log, row) -> None:
    """A fresh venv with torch, the pins and the project (a copy of `commit`) installed;
    a failure goes into `row`."""
    if venv.exists():
        shutil.rmtree(venv)
    _snapshot(src, commit)
    r = _step([python, "-m", "venv", str(venv)], log)
    if r.returncode:
        raise SystemExit(f"error: {python}: venv failed: {_last_line(r)}")
    spec = [f"torch=={args.torch}"] + [
        f"{PINS[k]}{v if v[0] in '<>=!~' else '==' + v}" for k, v in pins.items()]
    r = _step([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args.pip_arg, *spec,
               "-e", f"{src}[test]"], log, cwd=src)
    if r.returncode:
        row.update(outcome="install failed", detail=_last_line(r))


def run(args) -> dict:
    python = find_python(args.python)
    pins = {k: getattr(args, k) for k in PINS if getattr(args, k)}
    name = "-".join([f"py{args.python}", f"torch{args.torch}"] +
                    [f"{k}{_slug(v)}" for k, v in pins.items()])
    workdir = Path(args.workdir).resolve()
    venv, src = workdir / name, workdir / f"{name}.src"
    workdir.mkdir(parents=True, exist_ok=True)
    tag = name + (f"-pb-{args.protobuf_backend}" if args.protobuf_backend else "") + \
        ("-selection" if args.tests else "-full")
    log_path = workdir / f"{tag}.log"
    reuse = args.reuse and src.is_dir() and (venv / "bin" / "python").exists()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.strip()
    row = {"python": args.python, "torch": args.torch, "pins": pins,
           "protobuf_backend": args.protobuf_backend or "default",
           "tests": "full" if not args.tests else sorted(args.tests), "commit": commit,
           "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat()}
    py = str(venv / "bin" / "python")
    with open(log_path, "w") as log:
        if reuse:                   # the installed dependencies, the project copy at HEAD
            _snapshot(src, commit)
        else:
            _install(python, venv, src, commit, pins, args, log, row)
            if "outcome" in row:
                return _finish(row, venv, args)
        row["installed"] = installed(py, log, args.protobuf_backend)
        r = _step([py, "-c", IMPORTS], log, cwd=src, env=_env(args.protobuf_backend))
        if r.returncode:
            row.update(outcome="import failed", detail=_last_line(r))
            return _finish(row, venv, args)
        cmd = readme_test_command((src / "README.md").read_text())
        options = [a for a in cmd[3:] if a.startswith("-")]
        paths = args.tests or [a for a in cmd[3:] if not a.startswith("-")]
        row["command"] = shlex.join(["python", "-m", "pytest", *options, *paths])
        xml = workdir / f"{tag}.xml"
        xml.unlink(missing_ok=True)
        try:
            r = _step([py, "-m", "pytest", *options, *paths, "-p", "no:cacheprovider",
                       f"--junitxml={xml}"], log, cwd=src, env=_env(args.protobuf_backend),
                      timeout=args.timeout)
        except subprocess.TimeoutExpired:
            row.update(outcome="hung", detail=f"no end after {args.timeout} s")
            return _finish(row, venv, args)
        if not xml.exists():
            row.update(outcome="tests did not run", detail=_last_line(r))
            return _finish(row, venv, args)
        row.update(junit_outcome(xml))
        row["outcome"] = "passed" if not (row["failed"] or row["errors"]) else "failed"
    return _finish(row, venv, args)


def _finish(row: dict, venv: Path, args) -> dict:
    if not args.keep:
        shutil.rmtree(venv, ignore_errors=True)
        shutil.rmtree(f"{venv}.src", ignore_errors=True)
    records = load()
    key = _key(row)
    records = [r for r in records if _key(r) != key] + [row]
    records.sort(key=_order)
    RECORD.write_text(json.dumps(records, indent=1) + "\n")
    print(render_row(row))
    return row


def load() -> list[dict]:
    return json.loads(RECORD.read_text()) if RECORD.exists() else []


def _key(row: dict) -> str:
    return json.dumps([row["python"], row["torch"], row["pins"], row["protobuf_backend"],
                       row["tests"]], sort_keys=True)


def _version(text: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def _order(row: dict) -> tuple:
    return (_version(row["python"]), _version(row["torch"]), json.dumps(row["pins"]),
            row["protobuf_backend"], row["tests"] != "full")


def _what_ran(row: dict) -> str:
    if row["tests"] == "full":
        return "full suite"
    names = [Path(t.split("::")[0]).stem.removeprefix("test_") for t in row["tests"]]
    return "selection: " + ", ".join(names)


def _others(row: dict) -> str:
    """The installed versions of the other floors (protobuf with the backend the tests saw)."""
    got = row.get("installed", {})
    if not got:
        return "-"
    parts = [f"{key} {got.get(dist, row['pins'].get(key, '?'))}"
             for key, dist in [("numpy", "numpy"), ("protobuf", "protobuf"),
                               ("opencv", "opencv-python-headless"),
                               ("onnxruntime", "onnxruntime")]]
    if got.get("protobuf backend"):
        parts[1] += f" ({got['protobuf backend']})"
    return ", ".join(parts)


def _result(row: dict) -> str:
    if row["outcome"] in ("passed", "failed"):
        text = f"{row['passed']} passed, {row['failed'] + row['errors']} failed, {row['skipped']} skipped"
        if row["failing"]:
            shown = ", ".join(f"`{f.split('::')[-1]}`" for f in row["failing"][:4])
            more = len(row["failing"]) - 4
            text += f" ({shown}{f' and {more} more' if more > 0 else ''})"
        return text
    return f"{row['outcome']}: {row.get('detail', '')}".replace("|", "/")


def render_row(row: dict) -> str:
    got = row.get("installed", {})
    return (f"| {got.get('python', row['python'])} | {got.get('torch', row['torch'])} | "
            f"{_others(row)} | {_what_ran(row)} | {_result(row)} | {row['date']} | "
            f"{row.get('commit', '-')[:7]} |")


def render(records: list[dict] | None = None) -> str:
    records = load() if records is None else records
    head = ("| Python | torch | numpy, protobuf (backend), ... | tests run | result | date | "
            "commit |\n|---|---|---|---|---|---|---|")
    return "\n".join([head] + [render_row(r) for r in records])


def table(args) -> int:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"error: {README}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 1
    before, rest = text.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    new = f"{before}{BEGIN}\n{render()}\n{END}{after}"
    if args.check:
        if new != text:
            print(f"error: {README}: 'Tested with' differs from tools/compat.json "
                  f"(run python tools/compat.py table --write)", file=sys.stderr)
            return 1
        return 0
    if args.write:
        README.write_text(new)
    else:
        print(render())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="install one environment, run the tests, record the outcome",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--python", required=True, help="X.Y (pyenv or PATH) or an interpreter path")
    r.add_argument("--torch", required=True, help="torch version (pip: torch==VERSION)")
    for key, dist in PINS.items():
        r.add_argument(f"--{key}", help=f"pin for {dist}: a version or a specifier like '<2'")
    r.add_argument("--protobuf-backend", choices=["python", "upb"],
                   help=f"{_BACKEND} for the tests (default: protobuf's own choice)")
    r.add_argument("--tests", nargs="+", help="test files / ids to run instead of the README's "
                   "command's (recorded as a selection)")
    r.add_argument("--workdir", default=str(ROOT / ".compat"), help="where venvs and logs go")
    r.add_argument("--pip-arg", action="append", default=[], help="extra pip install argument")
    r.add_argument("--timeout", type=float, default=4 * 3600,
                   help="seconds before a test run counts as hung")
    r.add_argument("--keep", action="store_true", help="keep the venv")
    r.add_argument("--reuse", action="store_true", help="use the kept venv of the same "
                   "Python, torch and pins as it is (no install), with its copy of the project "
                   "refreshed to HEAD")
    t = sub.add_parser("table", help="render tools/compat.json (README 'Tested with')")
    t.add_argument("--write", action="store_true", help="put it into README.md")
    t.add_argument("--check", action="store_true", help="exit 1 when README.md's table is stale")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.command == "run":
        row = run(args)
        return 0 if row["outcome"] == "passed" else 1
    return table(args)


if __name__ == "__main__":
    sys.exit(main())
