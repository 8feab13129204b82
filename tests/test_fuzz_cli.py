"""Fuzzing through the command lines: mutants of small valid files of every kind a command
reads, each run by its real CLI in a child under the memory limit (`tests/hostile.py`).

A mutant either succeeds (exit 0) or is refused: exit 1, exactly one ``error:`` line, no
traceback, and no output file left behind. Bounded by count (`MUTANTS` per kind, about 40 in
all), seeded: the same mutants on every machine. The mutations are bench/fuzz.py's (bit
flips, boundary bytes, truncations, inserted / deleted / duplicated ranges, splices, and for
text, token insertions such as huge numbers); bench/fuzz.py runs the readers in-process for
millions of inputs, this runs a few dozen end to end.

    python -m pytest -q tests/test_fuzz_cli.py                       # the seeded run
    FUZZ_CLI_SEED=7 python -m pytest -q tests/test_fuzz_cli.py       # another set of mutants
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

import hostile
import needs
from bench.fuzz import mutate
from caffe_corpus import TINY, tiny_weights, write_h5
from conftest import DATA, slim_voc_training

SEED = int(os.environ.get("FUZZ_CLI_SEED", "1"))
SAMPLES = DATA / "samples" / "VOC2012"
LAYER = DATA / "oracle" / "layers" / "innerproduct"

# kind -> mutants; 40 in all
MUTANTS = {"prototxt": 6, "caffemodel": 6, "h5": 6, "pth": 3, "safetensors": 3, "onnx": 3,
           "png": 3, "jpeg": 2, "list": 4, "checkpoint": 4}
TEXT = {"prototxt", "list"}


class Seeds:
    """kind -> path of a small valid file of that kind, each made on first use: the Caffe
    files are tiny; the model files are the oracle's slim PSPNet50 converted (and exported to
    ONNX) once; the checkpoint comes from one training iteration."""

    def __init__(self, folder: Path):
        self.d = folder
        self.files: dict = {}

    def __getitem__(self, kind: str):
        if kind not in self.files:
            getattr(self, f"_make_{kind}")()
        return self.files[kind]

    def _make_prototxt(self):
        self.files["prototxt"] = self.d / "net.prototxt"
        self.files["prototxt"].write_text(TINY)

    def _make_caffemodel(self):
        self.files["caffemodel"] = LAYER / "weights.caffemodel"

    def _make_h5(self):
        self.files["h5"] = Path(write_h5(self.d / "w.h5", tiny_weights))

    def _image(self, kind, ext):
        image = np.random.default_rng(SEED).integers(0, 256, (24, 32, 3), dtype=np.uint8)
        self.files[kind] = self.d / f"image{ext}"
        cv2.imwrite(str(self.files[kind]), image)

    def _make_png(self):
        self._image("png", ".png")

    def _make_jpeg(self):
        self._image("jpeg", ".jpg")

    def _make_pth(self):
        folder, slim = slim_voc_training(self.d)
        self.files["pth"], self.files["list"] = slim, folder / "list.txt"

    _make_list = _make_pth

    def _make_safetensors(self):
        from converter.convert import convert

        slim_dir = DATA / "oracle" / "nets" / "pspnet50_ade20k_slim"
        self.files["safetensors"] = convert(slim_dir / "weights.caffemodel",
                                            slim_dir / "deploy.prototxt",
                                            out=self.d / "slim.safetensors", log=lambda *a: None)

    def _make_onnx(self):
        import psp_torch
        from converter.onnx_export import export_onnx

        self.files["onnx"] = export_onnx(psp_torch.load(self["pth"]), self.d / "slim.onnx",
                                         example_size=97)

    def _make_checkpoint(self):
        from train import run as train_run

        args = ["--data-root", SAMPLES, "--list", self["list"], "--num-classes", "21",
                "--init", self["pth"], "--crop-size", "97", "--batch-size", "2",
                "--workers", "0", "--no-progress", "--iters", "1", "--save-every", "1"]
        run = self.d / "train"
        assert train_run.main([str(a) for a in [*args, "--out", run]]) == 0
        self.files["checkpoint"], self.files["train_args"] = run / "checkpoint.pth", args


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> Seeds:
    return Seeds(tmp_path_factory.mktemp("fuzz_seeds"))


def _eval(model_option, model, *extra, out):
    return ["eval/run.py", model_option, model, "--out", out, "--crop-size", "97",
            "--base-size", "97", "--no-flip", "--workers", "0", *extra]


def command(kind: str, i: int, mutant: Path, seeds: dict, work: Path):
    """(argv, output that must not be left behind on a refusal: a file or a folder)."""
    out = work / "out"
    if kind == "prototxt":          # even: the reader alone; odd: the reader and CaffeNet
        if i % 2 == 0:
            return ["-m", "caffe_proto.inspect", mutant], None
        return ["converter/convert.py", seeds["h5"], "--prototxt", mutant, "-o",
                out / "m.pth"], out / "m.pth"
    if kind in ("caffemodel", "h5"):
        if i % 2 == 0:
            return ["-m", "caffe_proto.inspect", mutant], None
        proto = LAYER / "deploy.prototxt" if kind == "caffemodel" else seeds["prototxt"]
        return ["converter/convert.py", mutant, "--prototxt", proto, "-o",
                out / "m.pth"], out / "m.pth"
    if kind in ("pth", "safetensors"):
        return _eval("--weights", mutant, "--image", seeds["png"], out=out), out
    if kind == "onnx":
        return _eval("--onnx", mutant, "--image", seeds["png"], out=out), out
    if kind in ("png", "jpeg"):
        return _eval("--weights", seeds["pth"], "--image", mutant, out=out), out
    if kind == "list":
        return _eval("--weights", seeds["pth"], "--data-root", SAMPLES, "--list", mutant,
                     "--num-classes", "150", out=out), out
    if kind == "checkpoint":        # --resume reads OUT/checkpoint.pth
        out.mkdir()
        shutil.copy(mutant, out / "checkpoint.pth")
        args = seeds["train_args"]
        return ["train/run.py", *args, "--out", out, "--resume"], None
    raise AssertionError(kind)


def _cases():
    for kind, n in MUTANTS.items():
        for i in range(n):
            yield pytest.param(kind, i, id=f"{kind}-{i}",
                               marks=needs.ONNX if kind == "onnx" else ())   # its seed is an export


def make_mutant(kind: str, i: int, seed: Path) -> bytes:
    """Mutant `i` of a kind: the same bytes for a seed on every machine."""
    data = Path(seed).read_bytes()
    rng = random.Random(f"{SEED}/{kind}/{i}")
    for _ in range(10):             # a mutation that changes nothing is drawn again
        m = mutate(data, rng, [data], kind in TEXT)
        if m != data:
            return m
    raise AssertionError(f"no mutant of {kind} differs from its seed")


@pytest.mark.slow
@pytest.mark.parametrize("kind, i", list(_cases()))
def test_mutant_runs_or_is_refused_in_one_line(kind, i, seeds, tmp_path):
    seed = Path(seeds[kind])
    mutant = tmp_path / f"mutant{''.join(seed.suffixes[-2:]) or '.bin'}"
    mutant.write_bytes(make_mutant(kind, i, seed))
    argv, output = command(kind, i, mutant, seeds, tmp_path)
    before = hostile.files_under(tmp_path)
    r = hostile.run(argv, cwd=tmp_path, timeout=600)
    check_outcome(r, output, hostile.files_under(tmp_path) - before)


def check_outcome(r, output: Path | None, new_files: set) -> None:
    """Exit 0; or exit 1 with one error line, no traceback, `output` not written and no
    temporary file left among `new_files`."""
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    if r.returncode == 0:
        return
    hostile.assert_one_line(r)
    if output is not None:
        left = (hostile.files_under(output) if output.is_dir() else
                {output.name} if output.exists() else set())
        assert not left, f"a refused input left output behind: {sorted(left)}"
    assert not [f for f in new_files if ".tmp" in f or f.endswith(".partial")], new_files


@pytest.mark.parametrize("status, stderr, write", [
    (1, "Traceback (most recent call last):\n  ...\nValueError: x\n", False),
    (1, "error: a\nerror: b\n", False),                          # two lines
    (1, "error: m.pth: bad\n", True),                            # output left behind
    (-11, "", False),                                             # a crash
    (2, "usage: ...\nerror: x\n", False),                        # not a refusal of the input
])
def test_the_harness_sees_a_failure(tmp_path, status, stderr, write):
    """`check_outcome` fails on each way a CLI can mishandle a mutant (else it could not)."""
    import subprocess

    out = tmp_path / "m.pth"
    if write:
        out.write_bytes(b"half")
    r = subprocess.CompletedProcess([], status, "", stderr)
    with pytest.raises(AssertionError):
        check_outcome(r, out, set())
    check_outcome(subprocess.CompletedProcess([], 1, "", "error: m.pth: bad\n"),
                  tmp_path / "none.pth", set())


def test_the_mutants_are_seeded_and_differ_from_their_seeds(tmp_path):
    """The run is the same on every machine: mutants depend on the seed and index only."""
    seed = tmp_path / "net.prototxt"
    seed.write_text(TINY)
    a = [make_mutant("prototxt", i, seed) for i in range(MUTANTS["prototxt"])]
    assert a == [make_mutant("prototxt", i, seed) for i in range(MUTANTS["prototxt"])]
    assert all(m != seed.read_bytes() for m in a) and len(set(a)) == len(a)
    assert sum(MUTANTS.values()) == 40
