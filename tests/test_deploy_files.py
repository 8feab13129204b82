"""Model files for deployment: safetensors (convert.py --format safetensors, psp_torch.load)
and the torch.hub entry points (hubconf.py, source="local", paths only)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

import oracle
import psp_torch
from pspnet_caffe.converter.convert import convert, main as convert_main
from pspnet_caffe.converter.export import export
from psp_torch.io import ModelFileError, read, save
from psp_torch.safetensors_file import FORMAT, is_safetensors

ROOT = Path(__file__).resolve().parent.parent
NETS = {c.dir.name: c for c in oracle.cases("nets")}
VOC = NETS["pspnet101_voc_slim"]


def _quiet(*_):
    pass


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("deploy_files")
    pth = convert(VOC.caffemodel, out=d / "voc.pth", log=_quiet)
    st = convert(VOC.caffemodel, out=d / "voc.st", fmt="safetensors", log=_quiet)
    return pth, st


def _header(path) -> dict:
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n])


def _body(path) -> bytes:
    raw = Path(path).read_bytes()
    return raw[8 + struct.unpack("<Q", raw[:8])[0]:]


# ---------------------------------------------------------------- safetensors

def test_safetensors_round_trip_is_bit_exact(files):
    pth, st = files
    a, b = read(pth), read(st)
    assert b["kind"] == a["kind"] == "pspnet"
    assert b["config"] == a["config"] and b["meta"] == a["meta"]
    assert list(b["state_dict"]) == sorted(a["state_dict"]) or set(b["state_dict"]) == set(
        a["state_dict"])
    for k, t in a["state_dict"].items():
        u = b["state_dict"][k]
        assert u.dtype == t.dtype and u.shape == t.shape
        assert u.numpy().tobytes() == t.numpy().tobytes(), k
    # written again from what was read: the same header and the same tensor bytes (the
    # header's key order is safetensors' own, a hash map's, so the file bytes may differ)
    again = save(read(st), st.with_name("again.safetensors"))
    assert _header(again) == _header(st)
    assert _body(again) == _body(st)
    # loads as the same model
    ma, mb = psp_torch.load(pth), psp_torch.load(st)
    x = torch.randn(1, 3, 65, 65, generator=torch.Generator().manual_seed(0)) * 50
    with torch.no_grad():
        assert torch.equal(ma(x), mb(x))


def test_safetensors_header_holds_config_and_meta_as_json_and_no_pickle(files):
    _, st = files
    assert is_safetensors(st)
    meta = _header(st)["__metadata__"]
    assert meta["format"] == FORMAT and meta["kind"] == "pspnet"
    assert json.loads(meta["meta"])["dataset"] == "voc"
    assert json.loads(meta["config"])["num_classes"] == 21
    raw = st.read_bytes()
    assert b"\x80\x02" not in raw[:16] and not raw.startswith(b"PK")   # no pickle, no zip
    assert all(v["dtype"] in ("F32", "I64") for k, v in _header(st).items()
               if k != "__metadata__")


def test_convert_cli_format_flag_and_default_name(tmp_path, capsys):
    src = tmp_path / "w.caffemodel"
    src.write_bytes(NETS["pspnet50_ade20k_slim"].caffemodel.read_bytes())
    assert convert_main([str(src), "--format", "safetensors"]) == 0
    out = tmp_path / "w.safetensors"
    assert out.is_file() and is_safetensors(out)
    assert "wrote " + str(out) in capsys.readouterr().out
    assert psp_torch.load(out).meta["dataset"] == "ade20k"
    with pytest.raises(SystemExit) as e:
        convert_main([str(src), "--format", "npz"])
    assert e.value.code == 2


def test_generic_caffenet_round_trips_through_safetensors(tmp_path):
    case = oracle.cases("layers")[0]
    pth = convert(case.caffemodel, case.prototxt, out=tmp_path / "g.pth", log=_quiet)
    st = save(read(pth), tmp_path / "g.safetensors")
    a, b = read(pth), read(st)
    assert a["kind"] == b["kind"] == "caffenet" and a["prototxt"] == b["prototxt"]
    assert set(a["blobs"]) == set(b["blobs"])
    for layer, blobs in a["blobs"].items():
        assert [t.numpy().tobytes() for t in blobs] == [t.numpy().tobytes()
                                                        for t in b["blobs"][layer]]
    # the exporter reads it as well as the .pth
    p1, m1 = export(pth, tmp_path / "from_pth", log=_quiet)
    p2, m2 = export(st, tmp_path / "from_st", name="g", log=_quiet)
    assert p1.read_text() == p2.read_text() and m1.read_bytes() == m2.read_bytes()


def test_bad_safetensors_files_are_refused_with_the_file_named(tmp_path):
    from safetensors.torch import save as st_save
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(st_save({"w": torch.zeros(2)}))
    with pytest.raises(ModelFileError, match="plain.safetensors.*not a psp_torch model file"):
        psp_torch.load(plain)
    cut = tmp_path / "cut.safetensors"
    good = st_save({"w": torch.zeros(64)}, {"format": FORMAT, "kind": "pspnet"})
    cut.write_bytes(good[: len(good) - 10])
    with pytest.raises(ModelFileError, match="cut.safetensors"):
        psp_torch.load(cut)
    nocfg = tmp_path / "nocfg.safetensors"
    nocfg.write_bytes(good)
    with pytest.raises(ModelFileError, match="nocfg.safetensors.*header"):
        psp_torch.load(nocfg)


# ---------------------------------------------------------------- torch.hub

def test_hub_entry_points_local(files):
    pth, st = files
    import importlib.util
    spec = importlib.util.spec_from_file_location("hubconf_under_test", ROOT / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)                  # torch.hub.list reads GitHub repos only
    names = {n for n in dir(hub) if callable(getattr(hub, n)) and not n.startswith("_")}
    assert {"pspnet50_ade20k", "pspnet101_voc2012", "pspnet101_cityscapes", "load"} <= names
    ref = psp_torch.load(pth)
    for weights in (pth, st):
        model = torch.hub.load(str(ROOT), "pspnet101_voc2012", source="local", weights=str(weights))
        assert not model.training and model.meta == ref.meta
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                     ref.state_dict().values()))
        any_file = torch.hub.load(str(ROOT), "load", str(weights), source="local")
        assert any_file.config == ref.config
    with pytest.raises(ValueError, match="pspnet101_voc2012.*not pspnet101_cityscapes"):
        torch.hub.load(str(ROOT), "pspnet101_cityscapes", source="local", weights=str(pth))


def test_hub_random_init_is_the_released_configuration():
    model = torch.hub.load(str(ROOT), "pspnet50_ade20k", source="local")
    ref = psp_torch.pspnet50_ade20k()
    assert model.config == ref.config and model.meta == ref.meta and not model.training
