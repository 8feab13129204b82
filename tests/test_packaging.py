"""What an install puts into site-packages: only the project's own top-level names
(caffe_proto, psp_torch, pspnet_caffe), never a generic `eval`, `converter` or `train`; the
console scripts and the ``python -m`` forms the README documents resolve."""
from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:      # Python 3.10: pytest's own TOML reader, the same API
    import tomli as tomllib

import pytest

ROOT = Path(__file__).resolve().parent.parent
OWN = {"caffe_proto", "psp_torch", "pspnet_caffe"}


def _built(tmp_path) -> Path:
    """The files a wheel would carry (setuptools' build_py of this pyproject.toml): a wheel's
    purelib is exactly this tree. Where the `wheel` package is installed the wheel itself is
    built and unpacked instead."""
    out = tmp_path / "lib"
    try:
        import wheel  # noqa: F401
    except ImportError:
        cmd = [sys.executable, "-c", "from setuptools import setup; setup()", "build_py",
               "--build-lib", str(out)]
    else:
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "-w", str(tmp_path / "whl"), str(ROOT)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    wheels = list((tmp_path / "whl").glob("*.whl"))
    if wheels:
        import zipfile
        zipfile.ZipFile(wheels[0]).extractall(out)
    return out


def test_install_exposes_only_names_of_its_own(tmp_path):
    lib = _built(tmp_path)
    top = {p.name for p in lib.iterdir() if not p.name.endswith((".dist-info", ".data"))}
    assert top == OWN, top
    assert not {"eval", "converter", "train", "tests", "bench"} & top
    for sub, module in [("converter", "convert.py"), ("converter", "export.py"),
                        ("eval", "run.py")]:
        assert (lib / "pspnet_caffe" / sub / module).is_file(), (sub, module)
    assert (lib / "pspnet_caffe" / "train").is_dir()
    assert (lib / "caffe_proto" / "caffe.proto").is_file()
    # every package of the checkout is installed (pyproject.toml lists them one by one)
    for package in ("psp_torch", "caffe_proto"):
        for init in sorted((ROOT / package).rglob("__init__.py")):
            rel = init.relative_to(ROOT)
            assert (lib / rel).is_file(), f"{rel.parent} missing from pyproject.toml's packages"


def test_console_scripts_resolve():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"pspnet-convert", "pspnet-export", "pspnet-eval", "caffe-inspect"} <= set(scripts)
    for name, target in scripts.items():
        module, _, attr = target.partition(":")
        if module == "pspnet_caffe.train.run" and importlib.util.find_spec(module) is None:
            continue                                  # the training CLI is not in this tree yet
        assert callable(getattr(importlib.import_module(module), attr)), name


@pytest.mark.parametrize("module", ["pspnet_caffe.converter.convert",
                                    "pspnet_caffe.converter.export", "pspnet_caffe.eval.run",
                                    "pspnet_caffe.converter.info", "caffe_proto.inspect"])
def test_python_m_forms(module, tmp_path):
    r = subprocess.run([sys.executable, "-m", module, "--help"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("usage: "), r.stderr[-2000:]
