"""pspnet-info (converter/info.py): format, config, classes, parameters, MACs, sha256 and
provenance of a model file; names from files printed safely; bad files one line, exit 1."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import hostile
import psp_torch
from psp_torch.digest import file_sha256
from psp_torch.flops import count_macs
from psp_torch.io import read, save
from pspnet_caffe.converter import info as info_cli
from pspnet_caffe.converter.convert import convert

ROOT = Path(__file__).resolve().parent.parent
SLIM = ROOT / "tests" / "data" / "oracle" / "nets" / "pspnet101_voc_slim"
SIZE = ("97", "129")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("info")
    caffemodel = d / "voc_slim.caffemodel"
    caffemodel.write_bytes((SLIM / "weights.caffemodel").read_bytes())
    pth = convert(caffemodel, out=d / "voc_slim.pth", log=lambda *a: None)
    st = convert(caffemodel, out=d / "voc_slim.safetensors", log=lambda *a: None)
    return {"caffemodel": caffemodel, "pth": pth, "safetensors": st}


def _info(path, *extra, capsys) -> tuple[int, str, str]:
    try:
        rc = info_cli.main([str(path), *map(str, extra)])
    except SystemExit as exc:
        rc = exc.code
    r = capsys.readouterr()
    return rc, r.out, r.err


def test_pth_facts(files, capsys):
    rc, out, err = _info(files["pth"], "--size", *SIZE, capsys=capsys)
    assert rc == 0 and err == ""
    model = psp_torch.load(files["pth"])
    params = sum(p.numel() for p in model.parameters())
    macs = count_macs(model, (1, 3, 97, 129))
    assert f"sha256: {file_sha256(files['pth'])}" in out
    assert "format: pth (psp_torch.pth/1), kind pspnet" in out
    assert f"parameters: {params:,}" in out
    assert f"MACs at 97x129: {macs / 1e9:.2f} G ({macs:,})" in out
    assert "classes: 21" in out and "15 person" in out and "dataset: voc" in out
    assert "num_classes=21" in out and "blocks=[3, 4, 23, 3]" in out
    assert "provenance:" in out and "source: voc_slim.caffemodel" in out
    assert f"source_sha256: {file_sha256(files['caffemodel'])}" in out


def test_default_size_is_the_crop(files, capsys):
    rc, out, _ = _info(files["pth"], "--json", capsys=capsys)
    info = json.loads(out)
    assert rc == 0 and info["macs_size"] == [473, 473] and info["crop_size"] == 473


def test_caffemodel_and_safetensors_say_the_same_network(files, capsys):
    got = {}
    for kind in ("caffemodel", "pth", "safetensors"):
        rc, out, _ = _info(files[kind], "--json", "--size", *SIZE, capsys=capsys)
        assert rc == 0
        got[kind] = json.loads(out)
    assert got["caffemodel"]["format"] == "caffemodel"
    assert got["safetensors"]["format"] == "safetensors"
    for key in ("config", "parameters", "macs", "class_names", "name"):
        assert got["caffemodel"][key] == got["pth"][key] == got["safetensors"][key], key
    assert got["caffemodel"]["sha256"] == got["pth"]["source_sha256"]


def test_names_from_the_file_cannot_drive_the_terminal(files, tmp_path, capsys):
    payload = read(files["pth"])
    payload.pop("format")
    names = list(payload["meta"]["class_names"])
    names[3] = "bird\x1b[2J\nerror: forged line"
    payload["meta"]["class_names"] = names
    payload["meta"]["notes"] = "\x1b]0;title\x07" + "x" * 5000
    odd = save(payload, tmp_path / "odd.pth")
    rc, out, _ = _info(odd, "--size", *SIZE, capsys=capsys)
    assert rc == 0 and "\x1b" not in out and "\x07" not in out
    assert "3 bird\\x1b[2J\\nerror: forged line" in out
    assert not any(ln.startswith("error:") for ln in out.splitlines())
    assert max(len(ln) for ln in out.splitlines()) < 400         # a long value is shortened


@pytest.mark.parametrize("content, says", [
    (b"", "empty file"),
    (b"name: 'x'\nlayer { name: 'a' type: 'ReLU' }\n", "prototxt"),
    (b"just some words\n" * 10, "text file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG"),
])
def test_bad_files_one_line(tmp_path, content, says, capsys):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(content)
    rc, out, err = _info(bad, capsys=capsys)
    assert rc == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: {bad}: ") and says in err


def test_truncated_caffemodel_one_line_in_a_child(files, tmp_path):
    """The script itself, under the hostile-input harness's memory limit."""
    bad = tmp_path / "cut.caffemodel"
    bad.write_bytes(files["caffemodel"].read_bytes()[:5000])
    r = hostile.run(["converter/info.py", bad], cwd=tmp_path)
    hostile.assert_one_line(r, str(bad))
    assert r.stdout == ""


def test_missing_file_and_folder_one_line(tmp_path, capsys):
    for path, says in ((tmp_path / "nope.pth", "no such model file"),
                       (tmp_path, "is a folder, not a model file")):
        rc, out, err = _info(path, capsys=capsys)
        assert rc == 1 and out == "" and err == f"error: {path}: {says}\n"


def test_bad_config_names_the_file(files, tmp_path, capsys):
    payload = read(files["pth"])
    payload.pop("format")
    payload["config"] = dict(payload["config"], depth_of_field=3)
    bad = save(payload, tmp_path / "cfg.pth")
    rc, out, err = _info(bad, capsys=capsys)
    assert rc == 1 and err.startswith(f"error: {bad}: config: ") and err.count("\n") == 1


def test_usage_errors_exit_2(files, capsys):
    for argv in (["--size", "0", "5"], ["--size", "5"], ["--bogus"]):
        rc, out, err = _info(files["pth"], *argv, capsys=capsys)
        assert rc == 2 and "usage:" in err


def test_generic_caffenet_pth(tmp_path, capsys):
    """A .pth holding a CaffeNet (any prototxt): no PSPNet config, still parameters and MACs."""
    from pspnet_caffe.converter.convert import convert as conv
    from caffe_proto import load_prototxt, save_caffemodel
    import numpy as np
    text = ('name: "tiny"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 17 dim: 17 }\n'
            'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
            '  convolution_param { num_output: 4 kernel_size: 3 } }\n')
    (tmp_path / "t.prototxt").write_text(text)
    net = load_prototxt(text)
    net.layers[0].blobs = [np.ones((4, 3, 3, 3), np.float32), np.zeros(4, np.float32)]
    save_caffemodel(net, tmp_path / "t.caffemodel")
    pth = conv(tmp_path / "t.caffemodel", tmp_path / "t.prototxt", out=tmp_path / "t.pth",
               log=lambda *a: None)
    rc, out, _ = _info(pth, "--size", "17", "17", "--json", capsys=capsys)
    info = json.loads(out)
    assert rc == 0 and info["kind"] == "caffenet" and info["parameters"] == 4 * 27 + 4
    assert info["macs"] == 4 * 27 * 15 * 15
    torch.testing.assert_close(info["values_stored"], 112)
