"""Nothing is unpickled (robustness issue, item 3).

A malicious .pth, one whose unpickling would run code (its ``__reduce__`` creates a
marker file), is refused by `psp_torch.load`, ``eval/run.py --weights`` and
``converter/export.py`` without running it: the marker never appears. And no
source file of the project loads pickles: every ``torch.load`` passes
``weights_only=True``, no ``pickle.load``/``Unpickler``, no ``allow_pickle=True``.
"""
from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


class _Payload:
    """Unpickling calls ``open(marker, "w")``: a file appears if code runs."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_files(d: Path, marker: Path) -> dict:
    """The same attack in the three shapes a .pth can take."""
    files = {}
    # torch.save's zip container, with the payload beside a valid-looking model dict
    p = d / "evil_zip.pth"
    torch.save({"format": "psp_torch.pth/1", "kind": "pspnet", "config": {},
                "state_dict": {"w": torch.zeros(2)}, "meta": _Payload(marker)}, p)
    files["zip"] = p
    # the legacy (pre-1.6) non-zip torch.save format
    p = d / "evil_legacy.pth"
    torch.save({"format": "psp_torch.pth/1", "x": _Payload(marker)}, p,
               _use_new_zipfile_serialization=False)
    files["legacy"] = p
    # a bare pickle
    p = d / "evil_pickle.pth"
    p.write_bytes(pickle.dumps({"format": "psp_torch.pth/1", "x": _Payload(marker)}, protocol=2))
    files["pickle"] = p
    return files


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "PWNED"
    files = _evil_files(tmp_path, marker)
    assert zipfile.is_zipfile(files["zip"])
    # the payload is live: plain unpickling would create the marker (checked on the
    # bare pickle only, then removed, so the tests below start without it)
    pickle.loads(files["pickle"].read_bytes())
    assert marker.exists()
    marker.unlink()
    return files, marker


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.parametrize("shape", ["zip", "legacy", "pickle"])
def test_psp_torch_load_refuses(evil, shape):
    import psp_torch
    from psp_torch.io import ModelFileError
    files, marker = evil
    with pytest.raises(ModelFileError, match=re.escape(files[shape].name)):
        psp_torch.load(files[shape])
    assert not marker.exists(), "unpickling ran the payload"


def test_eval_run_weights_refuses(evil, tmp_path):
    files, marker = evil
    r = subprocess.run([sys.executable, str(ROOT / "eval" / "run.py"), "--weights",
                        str(files["zip"]), "--data-root", str(tmp_path), "--dataset", "ade20k",
                        "--out", str(tmp_path / "out"), "--workers", "0"],
                       cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    assert "evil_zip.pth" in r.stderr
    assert not marker.exists(), "eval/run.py ran the payload"
    assert not (tmp_path / "out").exists()


def test_export_refuses(evil, tmp_path):
    files, marker = evil
    out = tmp_path / "caffe_out"
    r = subprocess.run([sys.executable, str(ROOT / "converter" / "export.py"),
                        str(files["legacy"]), "-o", str(out)],
                       cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr               # bad input: 1 (psp_torch/cli.py)
    assert "Traceback" not in r.stderr, r.stderr
    assert "evil_legacy.pth" in r.stderr
    assert "weights_only=False" not in r.stderr and "weights_only` set to `False" not in r.stderr
    assert not marker.exists(), "export.py ran the payload"
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------- the source tree

SKIP_DIRS = {".git", "data", "__pycache__", ".hypothesis", ".pytest_cache", "build", "dist"}


def _sources():
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT)
        if SKIP_DIRS.intersection(rel.parts) or rel.parts[0].startswith((".", "venv")):
            continue
        yield rel, p.read_text(errors="replace")


def _calls(text: str, name: str):
    """The argument text of each call ``name(...)`` (balanced parentheses)."""
    for m in re.finditer(r"(?<![\w.])" + re.escape(name) + r"\s*\(", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        yield text.count("\n", 0, m.start()) + 1, text[m.end():i - 1]


UNSAFE = [r"\bpickle\.loads?\s*\(", r"\bpickle\.Unpickler\b", r"\bcPickle\b",
          r"\bdill\.loads?\b", r"\bjoblib\.load\b", r"\bread_pickle\s*\(", r"\bshelve\.open\b",
          r"allow_pickle\s*=\s*True", r"\btorch\.jit\.load\s*\("]
# This file holds the patterns as data and unpickles the payload it made itself, to
# prove the payload live; the scanner's own check is test_the_source_check_can_fail.
SELF = Path(__file__).resolve().relative_to(ROOT)


def test_no_unpickling_in_the_sources():
    found = []
    for rel, text in _sources():
        if rel == SELF:
            continue
        code = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
        for pat in UNSAFE:
            for m in re.finditer(pat, code):
                found.append(f"{rel}:{code.count(chr(10), 0, m.start()) + 1}: {m.group(0)}")
        for line, args in _calls(code, "torch.load"):
            if not re.search(r"weights_only\s*=\s*True", args):
                found.append(f"{rel}:{line}: torch.load without weights_only=True")
    assert not found, "unpickling of possibly untrusted data:\n" + "\n".join(found)


def test_the_source_check_can_fail(tmp_path):
    """The scanner above finds each pattern it is meant to find."""
    code = ("torch.load(p)\ntorch.load(p, map_location='cpu',\n  weights_only=False)\n"
            "np.load(f, allow_pickle=True)\npickle.load(f)\n")
    hits = [args for _, args in _calls(code, "torch.load")
            if not re.search(r"weights_only\s*=\s*True", args)]
    assert len(hits) == 2
    assert sum(bool(re.search(p, code)) for p in UNSAFE) == 2
    assert not [a for _, a in _calls("torch.load(p, weights_only=True)\npsp_torch.load(p)",
                                      "torch.load") if not re.search(r"weights_only\s*=\s*True", a)]
