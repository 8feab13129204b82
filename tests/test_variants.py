"""Every PSPNetConfig variant (tests/variants.py) exports to Caffe and comes back.

Caffe half of "every configuration exports" (the ONNX half is tests/test_onnx.py):

* converter/export.py writes the deploy prototxt (for the input size under test:
  ``--input-size``, since the prototxt fixes the input shape and the pyramid's Interp
  sizes) and the caffemodel; `CaffeNet.from_files` on those files is compared with the
  float64 forward of the same PSPNet (``model.double()``) at both `variants.SIZES`.
  Bound: CaffeNet and the eager float32 PSPNet are two float32 evaluations of the same
  arithmetic in different summation orders, so CaffeNet may be off the float64 result by
  a small multiple of the eager float32 forward's own deviation from it (measured: 0.9x
  to 1.3x of it on these nets; the bound is 4x). A wrong layer is far outside it: the
  MAX-pooled variant written with AVE pooling is checked to fail it.
* convert.py on the written files, and psp_torch.from_caffe, give back the same config
  (`PSPNetConfig.canonical`: Caffe keeps no width a net does not use) and the same
  state_dict, bit for bit.
* A config the Caffe layout cannot express is refused with one line before anything is
  written.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import psp_torch
from caffe_proto import load_prototxt, net_to_prototxt
from psp_torch.caffe.deploy import deploy_net
from psp_torch.caffe.graph import CaffeNet
from psp_torch.config import PSPNetConfig
from psp_torch.io import save_pspnet
from pspnet_caffe.converter.convert import convert
from pspnet_caffe.converter.export import ExportError, export, main as export_main
from pspnet_caffe.converter.synthetic import random_pspnet
from variants import SIZES, SLIM, VARIANTS, variant_config

FLOAT32_MARGIN = 4          # CaffeNet's deviation from float64 <= 4 x the eager float32's

# configurations PSPNetConfig allows beyond the training CLI's list
EXTRA = {"bins_descending": {"bins": (6, 3, 2, 1)},
         "crop_not_8k_plus_1": {"crop_size": 64}}
CONFIGS = {**{n: variant_config(n) for n in VARIANTS},
           **{n: PSPNetConfig(**{**SLIM, **v}) for n, v in EXTRA.items()}}


def _quiet(*_):
    pass


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """name -> (model, .pth, {size: (prototxt, caffemodel)}), written once per config."""
    cache = {}

    def get(name):
        if name not in cache:
            d = tmp_path_factory.mktemp(name)
            model = random_pspnet(CONFIGS[name], seed=3)
            pth = save_pspnet(model, d / f"{name}.pth", {"name": name})
            files = {size: export(pth, d / "caffe", name=f"{name}_{size[0]}x{size[1]}",
                                  input_size=size, log=_quiet) for size in _sizes(name)}
            files["crop"] = export(pth, d / "caffe", log=_quiet)
            cache[name] = model, pth, files
        return cache[name]
    return get


def _sizes(name):
    crop = CONFIGS[name].crop_size
    return SIZES if crop == SIZES[0][0] else ((crop, crop),) + SIZES[1:]


def _deviations(model, cnet, size):
    """(eager float32, CaffeNet) max |. - float64 forward| / max |float64 forward|."""
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(1)) * 50
    with torch.no_grad():
        eager = model(x)
        caffe = cnet(data=x, outputs=["conv6_interp"])["conv6_interp"]
        ref = model.double()(x.double())
        model.float()
    assert eager.shape == caffe.shape == ref.shape == (1, model.config.num_classes, *size)
    scale = float(ref.abs().max())
    return (float((eager.double() - ref).abs().max()) / scale,
            float((caffe.double() - ref).abs().max()) / scale)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_caffenet_on_the_exported_files_is_the_float64_forward(name, exported):
    model, _, files = exported(name)
    for size in _sizes(name):
        proto, caffemodel = files[size]
        assert load_prototxt(proto).inputs["data"] == (1, 3, *size)
        cnet = CaffeNet.from_files(proto, caffemodel)
        eager, caffe = _deviations(model, cnet, size)
        assert eager > 0 and caffe <= FLOAT32_MARGIN * eager, (name, size, eager, caffe)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_exported_files_convert_back_to_the_same_model(name, exported, tmp_path):
    model, _, files = exported(name)
    proto, caffemodel = files["crop"]
    want = model.config.canonical()
    state = model.state_dict()
    back = [psp_torch.load(convert(caffemodel, proto, out=tmp_path / "with_proto.pth",
                                   log=_quiet)),
            psp_torch.load(convert(caffemodel, out=tmp_path / "weights_only.pth", log=_quiet)),
            psp_torch.from_caffe(proto, caffemodel)]
    for again in back:
        assert again.config == want, name
        got = again.state_dict()
        assert list(got) == list(state)
        for key, t in state.items():
            assert got[key].dtype == t.dtype and torch.equal(got[key], t), (name, key)


def test_the_bound_catches_a_wrong_pooling_method(exported, tmp_path):
    """The MAX-pooled net run with AVE pyramid pooling (the ONNX bug of issue 16) fails it."""
    model, _, files = exported("max_pool")
    size = SIZES[1]
    wrong = net_to_prototxt(deploy_net(replace(model.config, pool="ave"), input_size=size))
    cnet = CaffeNet.from_files(wrong, files[size][1])
    eager, caffe = _deviations(model, cnet, size)
    assert caffe > 100 * FLOAT32_MARGIN * eager


def test_a_config_caffe_cannot_express_is_refused_before_writing(tmp_path, capsys):
    """An aux head with 24+ stage-4 blocks: its layer name conv4_24 is block 24's."""
    config = PSPNetConfig(**{**SLIM, "blocks": (3, 4, 24, 3), "aux_width": 16})
    pth = save_pspnet(random_pspnet(config), tmp_path / "deep.pth", {"name": "deep"})
    out = tmp_path / "out"
    with pytest.raises(ExportError, match="deep.pth: cannot be written as a Caffe net: aux head"):
        export(pth, out, log=_quiet)
    assert not out.exists()
    assert export_main([str(pth), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {pth}: cannot be written") and err.count("\n") == 1
    assert not out.exists()
