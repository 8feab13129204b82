"""converter/convert.py: Caffe files -> .pth that reproduces Caffe, and its refusals."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import oracle
import psp_torch
from caffe_proto import CaffeFormatError, load_caffemodel, load_prototxt
from conftest import DATA, ROOT
from pspnet_caffe.converter import convert as convert_mod
from pspnet_caffe.converter.convert import ConvertError, convert, default_output, main
from pspnet_caffe.converter.synthetic import write_released_style
from psp_torch.caffe.read_config import config_from_net
from psp_torch.caffe.weights import WeightMismatch, state_dict_from_caffe

NETS = {c.name: c for c in oracle.cases("nets")}
LAYERS = oracle.cases("layers")
BOUND = {"nets/pspnet50_ade20k_slim": 2e-4, "nets/pspnet101_voc_slim": 1e-3,
         "nets/pspnet101_cityscapes_slim": 1e-3}
SLIM = {"pspnet50_ade20k": "nets/pspnet50_ade20k_slim",
        "pspnet101_voc2012": "nets/pspnet101_voc_slim",
        "pspnet101_cityscapes": "nets/pspnet101_cityscapes_slim"}


def _quiet(*_):
    pass


def _rel_err(got, key, expected):
    got = oracle.compare(got, key, expected)
    return float(np.abs(got - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize("name", sorted(NETS))
def test_oracle_net_converts_and_reproduces_caffe(name, tmp_path):
    case = NETS[name]
    from_weights = convert(case.caffemodel, out=tmp_path / "w.pth", log=_quiet)
    from_proto = convert(case.caffemodel, case.prototxt, out=tmp_path / "p.pth", log=_quiet)
    a, b = psp_torch.load(from_weights), psp_torch.load(from_proto)
    assert isinstance(a, psp_torch.PSPNet) and a.config == b.config
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    stored = case.blobs()
    with torch.no_grad():
        out = a(torch.from_numpy(stored["data"])).numpy()
    key = "conv6_interp" if "conv6_interp" in stored else "conv6_interp@sub7"
    assert _rel_err(out, key, stored[key]) <= BOUND[name]
    meta = a.meta
    assert meta["source"] == "weights.caffemodel" and len(meta["source_sha256"]) == 64
    assert meta["converter_version"] == convert_mod.CONVERTER_VERSION
    assert meta["mean_rgb"] == [123.68, 116.779, 103.939] and meta["channel_order"] == "BGR"
    assert meta["num_classes"] == a.config.num_classes


@pytest.mark.parametrize("case", LAYERS, ids=lambda c: c.name)
def test_oracle_layer_case_converts_as_caffenet(case, tmp_path):
    out = convert(case.caffemodel, case.prototxt, out=tmp_path / "m.pth", log=_quiet)
    model = psp_torch.load(out)
    assert not isinstance(model, psp_torch.PSPNet)
    stored = case.blobs()
    inputs = {n: torch.from_numpy(stored[n]) for n in case.input_names}
    with torch.no_grad():
        blobs = model(**inputs, outputs="all")
    compared = 0
    for key, expected in stored.items():
        name = key.split("@")[0]
        if name in inputs or name not in blobs:
            continue
        err = np.abs(oracle.compare(blobs[name].numpy(), key, expected) - expected).max()
        assert err <= 1e-5 * max(np.abs(expected).max(), 1e-30), (key, err)
        compared += 1
    assert compared >= 1


@pytest.mark.parametrize("case", [c for c in LAYERS if c.h5 is not None][:4], ids=lambda c: c.name)
def test_h5_weights_convert_like_the_caffemodel(case, tmp_path):
    a = psp_torch.io.read(convert(case.caffemodel, case.prototxt, out=tmp_path / "a.pth", log=_quiet))
    b = psp_torch.io.read(convert(case.h5, case.prototxt, out=tmp_path / "b.pth", log=_quiet))
    assert a["blobs"].keys() == b["blobs"].keys() and a["blobs"]
    for name in a["blobs"]:
        assert all(torch.equal(x, y) for x, y in zip(a["blobs"][name], b["blobs"][name]))


@pytest.mark.parametrize("preset", sorted(SLIM))
def test_released_style_caffemodel_converts_without_prototxt(preset, tmp_path):
    slim = config_from_net(load_prototxt(NETS[SLIM[preset]].prototxt)).with_aux(16)
    path = tmp_path / f"{preset}.caffemodel"
    source = write_released_style(slim, path, seed=5)
    lines = []
    out = convert(path, log=lines.append)
    assert out == tmp_path / f"{preset}.pth" == default_output(path)
    model = psp_torch.load(out)
    assert model.config == slim and model.config.aux
    assert model.meta["dataset"] == psp_torch.presets.PRESETS[preset].dataset
    report = "\n".join(lines)
    for ignored in ("ImageSegData", "SoftmaxWithLoss", "SegAccuracy"):
        assert ignored in report
    sd, ref = model.state_dict(), source.state_dict()
    assert all(torch.equal(sd[k], ref[k]) for k in ref)
    x = torch.randn(1, 3, 65, 65) * 50
    with torch.no_grad():
        assert torch.equal(model(x), source(x))


def test_verify_passes_and_fails_cleanly(tmp_path, monkeypatch, capsys):
    case = NETS["nets/pspnet50_ade20k_slim"]
    out = tmp_path / "v.pth"
    assert main([str(case.caffemodel), "-o", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out
    assert "max |PSPNet - CaffeNet| / max |CaffeNet| = " in printed and out.exists()
    # the failure path (exit 3, nothing written), without a second pair of forwards
    def disagree(payload, dnet, wnet, log, **_):
        assert set(payload) >= {"config", "state_dict", "meta"}
        raise convert_mod.VerifyError("verify failed: relative difference 1 > 0.0002")
    monkeypatch.setattr(convert_mod, "verify", disagree)
    bad = tmp_path / "bad.pth"
    assert main([str(case.caffemodel), "-o", str(bad), "--verify"]) == 3
    assert "verify failed" in capsys.readouterr().err
    assert not bad.exists()


def test_command_line_end_to_end(tmp_path):
    case = NETS["nets/pspnet101_voc_slim"]
    out = tmp_path / "voc.pth"
    run = subprocess.run([sys.executable, str(ROOT / "converter" / "convert.py"),
                          str(case.caffemodel), "--prototxt", str(case.prototxt), "-o", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "layers matched: 223" in run.stdout and "blobs copied: 557" in run.stdout
    assert "recognised: PSPNet-101, 21 classes, crop 473" in run.stdout
    assert psp_torch.load(out).meta["name"] == "pspnet101_voc2012_custom_width"


# --- refusals: clear error, non-zero exit, no output left behind ---------------------------

def _refused(args, tmp_path, capsys, match):
    """Bad input: status 1 and one line ``error: FILE: what`` (psp_torch/cli.py; status 2 is
    kept for usage errors), nothing written."""
    before = set(tmp_path.iterdir())
    assert main([str(a) for a in args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert match in err, err
    assert set(tmp_path.iterdir()) == before
    return err


def test_refuses_a_file_that_is_not_a_caffemodel(tmp_path, capsys):
    png = tmp_path / "image.caffemodel"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    _refused([png, "-o", tmp_path / "o.pth"], tmp_path, capsys, "image.caffemodel")
    _refused([NETS["nets/pspnet101_voc_slim"].prototxt, "-o", tmp_path / "o.pth"],
             tmp_path, capsys, "deploy.prototxt")


def test_refuses_a_truncated_caffemodel(tmp_path, capsys):
    data = NETS["nets/pspnet50_ade20k_slim"].caffemodel.read_bytes()
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(data[: len(data) * 2 // 3])
    _refused([cut, "-o", tmp_path / "o.pth"], tmp_path, capsys, "cut.caffemodel")


def test_refuses_a_prototxt_that_does_not_match(tmp_path, capsys):
    err = _refused([NETS["nets/pspnet50_ade20k_slim"].caffemodel, "--prototxt",
                    NETS["nets/pspnet101_voc_slim"].prototxt, "-o", tmp_path / "o.pth"],
                   tmp_path, capsys, "layer")
    assert "conv" in err


def test_refuses_a_prototxt_whose_shapes_do_not_fit(tmp_path, capsys):
    case = NETS["nets/pspnet101_voc_slim"]
    other = NETS["nets/pspnet101_cityscapes_slim"]      # same layers, 19 classes, crop 713
    err = _refused([case.caffemodel, "--prototxt", other.prototxt, "-o", tmp_path / "o.pth"],
                   tmp_path, capsys, "conv6")
    assert "shape" in err


def test_refuses_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _refused([NETS["nets/pspnet50_ade20k_slim"].caffemodel, "-o", blocker / "o.pth"],
             tmp_path, capsys, "not a directory")


def test_keeps_an_existing_output_unless_forced(tmp_path, capsys):
    out = tmp_path / "o.pth"
    out.write_bytes(b"keep me")
    case = NETS["nets/pspnet50_ade20k_slim"]
    _refused([case.caffemodel, "-o", out], tmp_path, capsys, "--force")
    assert out.read_bytes() == b"keep me"
    assert main([str(case.caffemodel), "-o", str(out), "--force"]) == 0
    assert psp_torch.load(out).config.num_classes == 150
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.pth"]


def test_unrecognised_net_without_prototxt_asks_for_it(tmp_path, capsys):
    case = next(c for c in LAYERS if c.name == "layers/conv_dilated")
    err = _refused([case.caffemodel, "-o", tmp_path / "o.pth"], tmp_path, capsys, "--prototxt")
    assert "not recognised as a PSPNet" in err


def test_deploy_layer_without_weights_is_an_error(tmp_path):
    case = next(c for c in LAYERS if c.name == "layers/conv_dilated")
    text = case.prototxt.read_text()
    net = load_prototxt(text)
    conv = next(l for l in net.layers if l.type == "Convolution")
    renamed = text.replace(f'name: "{conv.name}"', 'name: "renamed_conv"', 1)
    with pytest.raises(ConvertError, match="renamed_conv"):
        convert(case.caffemodel, renamed, out=tmp_path / "o.pth", log=_quiet)
    assert not (tmp_path / "o.pth").exists()


def test_caffe_format_error_is_a_value_error():
    assert issubclass(CaffeFormatError, ValueError) and issubclass(ConvertError, ValueError)


def test_legacy_blob_shapes_fit_and_wrong_ones_name_both_shapes():
    case = NETS["nets/pspnet50_ade20k_slim"]
    config = config_from_net(load_prototxt(case.prototxt))
    wnet = load_caffemodel(case.caffemodel)
    conv6 = wnet.layer("conv6")
    bias = conv6.blobs[1]
    conv6.blobs[1] = bias.reshape(1, 1, 1, -1)                     # legacy 4-D bias
    bn = wnet.layer("conv5_4/bn")
    bn.blobs = [b.reshape(-1) for b in bn.blobs]                   # 1-D BN blobs
    state, report = state_dict_from_caffe(config, wnet)
    assert torch.equal(state["classifier.bias"], torch.from_numpy(bias))
    assert report.blobs == 302
    conv6.blobs[0] = conv6.blobs[0].reshape(150, 16, 2, 1)
    with pytest.raises(WeightMismatch, match=r"conv6.*\(150, 16, 2, 1\).*\(150, 32, 1, 1\)"):
        state_dict_from_caffe(config, wnet)
    conv6.blobs = conv6.blobs[:1]
    with pytest.raises(WeightMismatch, match="conv6.*1 blobs"):
        state_dict_from_caffe(config, wnet)


# --- where -o writes; weights the prototxt leaves unused or missing; --verify's line -------

def test_output_into_a_folder_as_cp_does(tmp_path, capsys):
    case = next(c for c in LAYERS if c.name == "layers/conv_dilated")
    args = [str(case.caffemodel), "--prototxt", str(case.prototxt)]
    assert main(args + ["-o", str(tmp_path / "new") + "/"]) == 0        # trailing slash
    assert (tmp_path / "new" / "weights.pth").is_file()
    (tmp_path / "there").mkdir()
    assert main(args + ["-o", str(tmp_path / "there")]) == 0              # an existing folder
    assert (tmp_path / "there" / "weights.pth").is_file()
    assert main(args + ["-o", str(tmp_path / "a" / "b" / "c.pth")]) == 0  # missing parents
    assert (tmp_path / "a" / "b" / "c.pth").is_file()
    capsys.readouterr()


def test_a_prototxt_using_none_of_the_weights_is_refused(tmp_path, capsys):
    """The issue's case: a prototxt without any of the file's layers used to exit 0 after
    copying 0 blobs."""
    case = next(c for c in LAYERS if c.name == "layers/conv_dilated")
    other = tmp_path / "pool.prototxt"
    other.write_text('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 10 dim: 10 }\n'
                     'layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
                     'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n')
    err = _refused([case.caffemodel, "--prototxt", other, "-o", tmp_path / "o.pth"], tmp_path,
                   capsys, "none of its 3 layers with weights is in the prototxt")
    assert str(case.caffemodel) in err


def test_learnable_layers_without_weights_fail_or_are_listed(tmp_path, capsys):
    case = next(c for c in LAYERS if c.name == "layers/conv_dilated")
    renamed = tmp_path / "renamed.prototxt"
    renamed.write_text(case.prototxt.read_text().replace('"conv_d4"', '"conv_other"'))
    _refused([case.caffemodel, "--prototxt", renamed, "-o", tmp_path / "o.pth"], tmp_path,
             capsys, "1 learnable layer(s) of the prototxt have no weights in it: conv_other "
                     "(Convolution)")
    out = tmp_path / "o.pth"
    assert main([str(case.caffemodel), "--prototxt", str(renamed), "-o", str(out),
                 "--allow-missing"]) == 0
    printed = capsys.readouterr().out
    assert "left at initial values (--allow-missing): 1" in printed
    assert "conv_other (Convolution): no weights in weights.caffemodel" in printed
    assert "conv_d4 (Convolution): not in the prototxt" in printed
    model = psp_torch.load(out)
    assert model.meta["initial_values"] == ["conv_other"]
    again = psp_torch.load(out)             # the initial values are stored: same model twice
    x = torch.randn(1, 4, 21, 23)
    with torch.no_grad():
        a, b = model(data=x), again(data=x)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_verify_states_difference_and_tolerance_alike():
    """Both relative to the output's range (and both absolute alongside): the issue's line
    '0.00124 ... tolerance 0.001' read as a failure that passed."""
    line = convert_mod.verify_line(0.00124, 13.0, 1e-3)
    assert line.startswith("verify: max |PSPNet - CaffeNet| / max |CaffeNet| = 9.54e-05, "
                           "within the tolerance 0.001 (absolute: 0.00124 against 0.013;")
    assert "ABOVE the tolerance 0.001" in convert_mod.verify_line(0.1, 13.0, 1e-3)
