"""One convention for every command (psp_torch/cli.py, caffe_proto/cli.py): --help shows the
defaults, usage errors exit 2, bad input exits 1 with one line ``error: FILE: what``, and the
device and every number are checked while parsing, before any work."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import oracle
from caffe_proto import inspect as inspect_cli
from psp_torch import cli
from pspnet_caffe.converter import convert as convert_cli
from pspnet_caffe.converter import export as export_cli
from pspnet_caffe.converter import info as info_cli
from pspnet_caffe.eval import run as eval_cli

ROOT = Path(__file__).resolve().parent.parent
SLIM = oracle.ORACLE / "nets" / "pspnet50_ade20k_slim"
MAINS = {"convert": convert_cli.main, "export": export_cli.main, "inspect": inspect_cli.main,
         "eval": eval_cli.main, "info": info_cli.main}


def _status(main, argv, capsys) -> tuple[int, str]:
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:            # argparse: usage errors and --help
        rc = exc.code
    return rc, capsys.readouterr().err


def _one_error_line(err: str, *mentions: str):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for m in mentions:
        assert m in err, err


# ---------------------------------------------------------------- --help

@pytest.mark.parametrize("name", sorted(MAINS))
def test_help_shows_every_default(name, capsys):
    rc, _ = _status(MAINS[name], ["--help"], capsys)
    assert rc == 0


def test_eval_help_documents_device_precision_resize(capsys):
    with pytest.raises(SystemExit):
        eval_cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option, default in [("--device", cli.default_device()), ("--precision", "fp32"),
                            ("--resize", "matlab"), ("--batch", "2"), ("--workers", "2")]:
        m = re.search(re.escape(option) + r" [A-Z_{},0-9a-z]+ (.*?)\(default: ([^)]*)\)", text)
        assert m and m.group(1).strip() and m.group(2) == default, (option, text)


# ---------------------------------------------------------------- usage errors: 2

@pytest.mark.parametrize("extra, says", [
    (["--crop-size", "-5"], "--crop-size: '-5' must be a positive integer"),
    (["--crop-size", "0"], "--crop-size: '0' must be a positive integer"),
    (["--base-size", "0"], "--base-size: '0' must be a positive integer"),
    (["--limit", "0"], "--limit: '0' must be a positive integer"),
    (["--batch", "0"], "--batch: '0' must be a positive integer"),
    (["--workers", "-1"], "--workers: '-1' must be an integer >= 0"),
    (["--scales", "0,1"], "--scales: '0' must be a number > 0"),
    (["--scales", "1,x"], "--scales: 'x' is not a number"),
    (["--crop-size", "4.5"], "--crop-size: '4.5' is not an integer"),
    (["--device", "gpu"], "--device: 'gpu' is not a device (use cpu, cuda, cuda:N or mps)"),
])
def test_eval_numbers_and_device_are_checked_while_parsing(extra, says, tmp_path, capsys):
    rc, err = _status(eval_cli.main, ["--weights", tmp_path / "never_read.pth", "--data-root",
                                      tmp_path, *extra], capsys)
    assert rc == 2 and says in err, err
    assert not (tmp_path / "eval_out").exists()


def test_device_cuda_without_a_gpu_is_a_usage_error(monkeypatch, tmp_path, capsys):
    """Checked first: not reported as an unreadable model file."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, err = _status(eval_cli.main, ["--weights", tmp_path / "missing.pth", "--data-root",
                                      tmp_path, "--device", "cuda"], capsys)
    assert rc == 2 and "'cuda': no CUDA device here" in err and "use cpu" in err, err
    assert "missing.pth" not in err


def test_library_load_checks_the_device_first(monkeypatch, tmp_path):
    """psp_torch.load(device="cuda") without a GPU names the device, not the file."""
    import psp_torch
    from pspnet_caffe.converter.convert import convert
    pth = convert(SLIM / "weights.caffemodel", out=tmp_path / "m.pth", log=lambda *a: None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"^device 'cuda': no CUDA device here"):
        psp_torch.load(pth, device="cuda")
    with pytest.raises(ValueError, match=r"^device 'gpu' is not a device"):
        psp_torch.load(pth, device="gpu")
    assert not psp_torch.load(pth, device="cpu").training


def test_usage_error_found_after_parsing_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("standin.TinySegNet.__init__", _no_dataset_init, raising=True)
    rc, err = _status(eval_cli.main, ["--model", "standin:ade20k",
                                      "--data-root", tmp_path, "--device", "cpu"], capsys)
    assert rc == 2, err
    _one_error_line(err, "pass --dataset")


def _no_dataset_init(self, dataset, seed=0):
    torch.nn.Module.__init__(self)
    self.conv = torch.nn.Conv2d(3, 150, 8, stride=8, padding=4)
    self.meta = {"name": "anonymous"}


# ---------------------------------------------------------------- runtime errors: 1

def test_a_caffemodel_given_as_weights_says_convert_first(tmp_path, capsys):
    """Sniffed from its bytes (nothing unpickled): eval/run.py, export.py and psp_torch.load
    say what the file is and what to do; no advice to load with weights_only=False."""
    import psp_torch
    from psp_torch.io import ModelFileError
    model = SLIM / "weights.caffemodel"
    rc, err = _status(eval_cli.main, ["--weights", model, "--dataset", "ade20k", "--data-root",
                                      tmp_path, "--device", "cpu"], capsys)
    assert rc == 1
    _one_error_line(err, str(model), "Caffe caffemodel", "convert it first")
    assert "weights_only" not in err and "could run code" not in err
    rc, err = _status(export_cli.main, [model, "-o", tmp_path / "x"], capsys)
    assert rc == 1
    _one_error_line(err, str(model), "Caffe caffemodel", "convert it first")
    assert not (tmp_path / "x").exists()
    for path, says in [(SLIM / "weights.caffemodel.h5", "HDF5"),
                       (SLIM / "deploy.prototxt", "Caffe prototxt"),
                       (ROOT / "README.md", "text file"),
                       (ROOT / "tests" / "data" / "samples" / "VOC2012" / "JPEGImages" /
                        "2007_000033.jpg", "JPEG image")]:
        if not path.exists():
            continue
        with pytest.raises(ModelFileError) as e:
            psp_torch.load(path)
        assert str(e.value).startswith(f"{path}: ") and says in str(e.value), str(e.value)


def test_caffemodel_recogniser():
    from caffe_proto.sniff import looks_like_caffemodel
    for case in oracle.cases():
        assert looks_like_caffemodel(case.caffemodel.read_bytes()[:4096]), case.name
    for head in [b"", b"\x00\x01", b"PK\x03\x04", b"layer {", b"\x89HDF\r\n\x1a\n",
                 b"\x0a\x05hello"]:           # a name and then nothing: not a net
        assert not looks_like_caffemodel(head), head


@pytest.mark.parametrize("name", ["convert", "export", "inspect"])
def test_missing_file_is_one_line_status_1(name, tmp_path, capsys):
    missing = tmp_path / "nowhere.bin"
    argv = [missing] + (["-o", tmp_path / "o"] if name != "inspect" else [])
    rc, err = _status(MAINS[name], argv, capsys)
    assert rc == 1
    _one_error_line(err, str(missing))


def test_scripts_keep_the_convention_in_their_own_process(tmp_path):
    """As a user runs them: status and the one line, from the interpreter itself."""
    r = subprocess.run([sys.executable, str(ROOT / "converter" / "convert.py"),
                        str(tmp_path / "none.caffemodel")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, str(ROOT / "eval" / "run.py"), "--weights", "x.pth",
                        "--data-root", ".", "--batch", "0"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "usage:" in r.stderr and "--batch" in r.stderr


# ---------------------------------------------------------------- the convention itself

def test_numeric_types():
    assert cli.positive_int("3") == 3 and cli.nonnegative_int("0") == 0
    assert cli.positive_float("0.5") == 0.5 and cli.fraction("0") == 0.0
    for parse, text in [(cli.positive_int, "0"), (cli.positive_int, "x"),
                        (cli.nonnegative_int, "-1"), (cli.positive_float, "nan"),
                        (cli.positive_float, "inf"), (cli.fraction, "1")]:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_main_maps_errors_to_statuses(capsys):
    def boom(exc):
        def work():
            raise exc
        return work
    assert cli.main(lambda: None) == 0
    assert cli.main(boom(ValueError("f.bin: broken"))) == 1
    assert capsys.readouterr().err == "error: f.bin: broken\n"
    assert cli.main(boom(FileNotFoundError(2, "No such file or directory", "g.bin"))) == 1
    assert capsys.readouterr().err == "error: g.bin: No such file or directory\n"
    assert cli.main(boom(cli.UsageError("pass --dataset"))) == 2
    assert capsys.readouterr().err == "error: pass --dataset\n"
    assert cli.main(boom(KeyboardInterrupt()), interrupted="interrupted; kept") == 130
    assert capsys.readouterr().err == "error: interrupted; kept\n"
