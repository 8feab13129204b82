"""converter/export.py: .pth -> deploy prototxt + caffemodel, and the bit-for-bit round trip."""
from __future__ import annotations

import pytest
import torch

import oracle
import psp_torch
from caffe_proto import load_caffemodel, load_prototxt, net_to_prototxt
from conftest import DATA
from pspnet_caffe.converter.convert import convert
from pspnet_caffe.converter.export import ExportError, export, main
from pspnet_caffe.converter.synthetic import write_released_style
from psp_torch.caffe.deploy import deploy_net
from psp_torch.caffe.read_config import config_from_net
from psp_torch.config import preset_config

NETS = {c.name: c for c in oracle.cases("nets")}
RELEASED = {"pspnet50_ade20k": "pspnet50_ADE20K_473.prototxt",
            "pspnet101_voc2012": "pspnet101_VOC2012_473.prototxt",
            "pspnet101_cityscapes": "pspnet101_cityscapes_713.prototxt"}


def _quiet(*_):
    pass


def _same_network(a, b):
    """Same inputs, same layers in the same order with equal parsed parameters."""
    assert a.inputs == b.inputs
    assert [l.name for l in a.layers] == [l.name for l in b.layers]
    for x, y in zip(a.layers, b.layers):
        assert x.param == y.param, f"layer {x.name!r} differs:\n{x.param}\nvs\n{y.param}"


@pytest.mark.parametrize("preset", sorted(RELEASED))
def test_exported_prototxt_is_the_released_network(preset):
    """What export writes for a released configuration parses to the authors' prototxt."""
    released = load_prototxt(DATA / "prototxt" / RELEASED[preset])
    written = load_prototxt(net_to_prototxt(deploy_net(preset_config(preset), preset)))
    _same_network(written, released)


@pytest.mark.parametrize("name", sorted(NETS))
def test_caffe_written_caffemodel_round_trips_bit_for_bit(name, tmp_path):
    case = NETS[name]
    pth = convert(case.caffemodel, out=tmp_path / "m.pth", log=_quiet)
    proto, model = export(pth, tmp_path / "out", log=_quiet)
    assert (proto.name, model.name) == ("m.prototxt", "m.caffemodel")
    _same_network(load_prototxt(proto), load_prototxt(case.prototxt))
    original = load_caffemodel(case.caffemodel)
    back = load_caffemodel(model).by_name()
    n = 0
    for layer in original.layers:
        if not layer.blobs:
            continue
        assert [b.shape for b in back[layer.name].blobs] == [b.shape for b in layer.blobs]
        for x, y in zip(layer.blobs, back[layer.name].blobs):
            assert x.tobytes() == y.tobytes(), layer.name
            n += 1
    assert n == sum(len(l.blobs) for l in load_caffemodel(model).layers)


def test_released_style_round_trip_keeps_aux_blobs(tmp_path):
    slim = config_from_net(load_prototxt(NETS["nets/pspnet101_voc_slim"].prototxt)).with_aux(16)
    src = tmp_path / "rel.caffemodel"
    write_released_style(slim, src, seed=2)
    pth = convert(src, log=_quiet)
    _, model = export(pth, tmp_path / "out", log=_quiet)
    original = load_caffemodel(src)
    back = load_caffemodel(model).by_name()
    blobs = [(l.name, i, b) for l in original.layers for i, b in enumerate(l.blobs)]
    assert {"conv4_24", "conv4_24/bn", "conv6_1"} <= {name for name, _, _ in blobs}
    for name, i, b in blobs:
        assert back[name].blobs[i].shape == b.shape and back[name].blobs[i].tobytes() == b.tobytes()
    # and the exported file converts again to the same model
    again = psp_torch.load(convert(model, out=tmp_path / "again.pth", log=_quiet))
    first = psp_torch.load(pth)
    assert again.config == first.config
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                 first.state_dict().values()))


def test_caffenet_conversion_exports_its_own_prototxt(tmp_path):
    case = next(c for c in oracle.cases("layers") if c.name == "layers/conv_group_stride_bias")
    pth = convert(case.caffemodel, case.prototxt, out=tmp_path / "g.pth", log=_quiet)
    proto, model = export(pth, tmp_path / "out", log=_quiet)
    _same_network(load_prototxt(proto), load_prototxt(case.prototxt))
    original = load_caffemodel(case.caffemodel).by_name()
    for layer in load_caffemodel(model).layers:
        for x, y in zip(layer.blobs, original[layer.name].blobs):
            assert x.tobytes() == y.tobytes()


def test_export_keeps_existing_files_unless_forced(tmp_path, capsys):
    pth = convert(NETS["nets/pspnet50_ade20k_slim"].caffemodel, out=tmp_path / "m.pth",
                  log=_quiet)
    out = tmp_path / "out"
    assert main([str(pth), "-o", str(out)]) == 0
    (out / "m.caffemodel").write_bytes(b"keep")
    assert main([str(pth), "-o", str(out)]) == 1          # bad input: 1 (psp_torch/cli.py)
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out / 'm.prototxt'}: exists") and "--force" in err
    assert (out / "m.caffemodel").read_bytes() == b"keep"
    assert main([str(pth), "-o", str(out), "--force"]) == 0
    assert load_caffemodel(out / "m.caffemodel").layers
    assert sorted(p.name for p in out.iterdir()) == ["m.caffemodel", "m.prototxt"]


def test_export_refuses_a_foreign_pth(tmp_path):
    bad = tmp_path / "x.pth"
    torch.save({"a": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not a psp_torch model file"):
        export(bad, tmp_path / "out", log=_quiet)
    assert not (tmp_path / "out").exists()
    assert issubclass(ExportError, ValueError)


def test_input_size_writes_the_deploy_net_for_that_input(tmp_path, capsys):
    pth = convert(NETS["nets/pspnet101_voc_slim"].caffemodel, out=tmp_path / "m.pth",
                  log=_quiet)
    out = tmp_path / "out"
    assert main([str(pth), "-o", str(out), "--input-size", "57", "81"]) == 0
    net = load_prototxt(out / "m.prototxt")
    assert net.inputs["data"] == (1, 3, 57, 81)
    sizes = {(l.param.interp_param.height, l.param.interp_param.width)
             for l in net.layers if l.name.startswith("conv5_3_pool") and l.type == "Interp"}
    assert sizes == {(8, 11)}                      # the stage-5 size of a 57 x 81 input
    assert net.layer("conv6_interp").param.interp_param.zoom_factor == 8
    case = next(c for c in oracle.cases("layers") if c.name == "layers/conv_group_stride_bias")
    generic = convert(case.caffemodel, case.prototxt, out=tmp_path / "g.pth", log=_quiet)
    assert main([str(generic), "-o", str(tmp_path / "g"), "--input-size", "9", "9"]) == 1
    assert "--input-size is for PSPNets" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
