"""The network's one description: the blocks of psp_torch/pspnet.py declare their Caffe layers
next to their forward, and everything Caffe-side is derived from them.

* where the aux head attaches is one config value (`PSPNetConfig.aux_after`): the forward
  feeds the aux head that block's output, and the Caffe layer list reads the same block;
* the release's lr multipliers in the deploy prototxt and the optimiser's parameter groups
  come from one declaration (`PSPNet.NEW_LAYERS` + `presets.MULTIPLIERS`);
* a config read off a Caffe net names the aux head's place as the file does.
(Export to Caffe and back, and to ONNX, of a moved aux head: tests/variants.py's
``aux_on_stage3``, run by tests/test_variants.py and tests/test_onnx.py.)
"""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import hostile
from caffe_proto import load_prototxt, load_weights, net_to_prototxt, save_caffemodel
from conftest import DATA
from psp_torch.caffe.deploy import deploy_net
from psp_torch.caffe.names import layer_keys
from psp_torch.caffe.read_config import NotAPSPNet, config_from_net
from psp_torch.caffe.structure import caffe_layers
from psp_torch.config import PSPNetConfig
from psp_torch.presets import MULTIPLIERS
from psp_torch.pspnet import AuxHead, PSPNet
from pspnet_caffe.converter.synthetic import random_pspnet, released_style_net
from pspnet_caffe.train.optim import param_groups
from variants import SLIM

AUX = {**SLIM, "aux_width": 8, "crop_size": 49}


@pytest.mark.parametrize("after, block", [("conv4", "conv4_6"), ("conv3", "conv3_4"),
                                          ("conv2_1", "conv2_1"), ("conv5_2", "conv5_2")])
def test_the_aux_head_reads_the_block_aux_after_names(after, block):
    config = PSPNetConfig(**{**AUX, "aux_after": after})
    assert config.aux_block == block
    torch.manual_seed(0)
    model = PSPNet(config).train()
    seen = []
    model.aux.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    blobs = {}
    out = model(torch.randn(2, 3, 49, 49), blobs)
    assert out["aux"].shape == out["out"].shape == (2, 150, 49, 49)
    assert len(seen) == 1 and seen[0] is blobs[block]
    aux = [layer for layer in caffe_layers(config) if layer.aux]
    assert [layer.name for layer in aux][0] == AuxHead.NAME and aux[0].bottom == (block,)
    assert model.aux.conv.in_channels == blobs[block].shape[1]


def test_aux_after_is_checked_and_canonical():
    for bad in ("conv6", "conv4_7", "conv1", "layer3", "conv4_0", ""):
        with pytest.raises(ValueError, match="aux_after"):
            PSPNetConfig(**{**AUX, "aux_after": bad})
    last = PSPNetConfig(**{**AUX, "aux_after": "conv4_6"})
    assert last.canonical().aux_after == "conv4" and last.canonical() == PSPNetConfig(**AUX)
    unused = PSPNetConfig(**{**SLIM, "aux_after": "conv2_1"})     # no aux head
    assert unused.canonical() == PSPNetConfig(**SLIM)


@pytest.mark.parametrize("after", ["conv4", "conv3_2"])
def test_a_config_read_off_the_caffe_net_has_the_aux_head_where_the_file_has_it(after):
    config = PSPNetConfig(**{**AUX, "aux_after": after})
    net = load_prototxt(net_to_prototxt(deploy_net(config, aux=True)))
    assert config_from_net(net) == config.canonical()
    text = net_to_prototxt(deploy_net(config, aux=True))
    wrong = text.replace(f'bottom: "{config.aux_block}"\n  top: "{AuxHead.NAME}"',
                         f'bottom: "conv5_3_concat"\n  top: "{AuxHead.NAME}"')
    assert wrong != text
    with pytest.raises(NotAPSPNet, match="aux head.*'conv5_3_concat'"):
        config_from_net(load_prototxt(wrong))


def test_deploy_lr_multipliers_are_the_optimiser_groups():
    """Every weighted blob's lr_mult / decay_mult in the deploy net equals the multipliers of
    the optimiser group its parameter lands in (one declaration of the new layers)."""
    config = PSPNetConfig(**{**AUX, "aux_after": "conv3"})
    model = PSPNet(config)
    group_of = {id(p): (g["lr_mult"], g["decay_mult"])
                for g in param_groups(model) for p in g["params"]}
    params = dict(model.named_parameters())
    layers = {layer.name: layer for layer in deploy_net(config, aux=True).layers}
    seen = set()
    for lk in layer_keys(config, aux=True):
        specs = layers[lk.caffe].param.param
        for key, spec in zip(lk.keys, specs):
            if key in params:
                assert (spec.lr_mult, spec.decay_mult) == group_of[id(params[key])], key
                seen.add(group_of[id(params[key])])
    assert seen == set(MULTIPLIERS.values()) and len(seen) == 5
    assert set(params) <= {k for lk in layer_keys(config, aux=True) for k in lk.keys}


def test_a_moved_aux_head_changes_only_the_aux_layers():
    """Moving the aux head is the config value: the deploy net's other layers stay the same."""
    here = PSPNetConfig(**AUX)
    there = replace(here, aux_after="conv3")
    a, b = caffe_layers(here), caffe_layers(there)
    assert [layer for layer in a if not layer.aux] == [layer for layer in b if not layer.aux]
    assert [layer.bottom for layer in a if layer.aux][0] == ("conv4_6",)
    assert [layer.bottom for layer in b if layer.aux][0] == ("conv3_4",)


def test_a_caffemodel_whose_aux_head_reads_no_block_is_one_error_line(tmp_path):
    """conv4_24 reading something other than a residual block's output: convert.py names the
    file, the layer and what it reads, in one line, and writes nothing."""
    config = PSPNetConfig(**AUX)
    model = random_pspnet(config)
    net = released_style_net(config, model.state_dict())
    (aux,) = [layer for layer in net.layers if layer.name == AuxHead.NAME]
    aux.bottom[:] = ["conv5_3_concat"]
    del aux.param.bottom[:]
    aux.param.bottom.append("conv5_3_concat")
    bad = tmp_path / "moved.caffemodel"
    save_caffemodel(net, bad)
    r = hostile.run(["converter/convert.py", bad, "-o", tmp_path / "out.pth"], cwd=tmp_path)
    hostile.assert_one_line(r, bad.name, AuxHead.NAME, "conv5_3_concat")
    assert not (tmp_path / "out.pth").exists()


def test_the_aux_head_is_found_through_caffes_split_layers():
    """A caffemodel saved by Caffe keeps the Split layers it inserted where a blob feeds two
    layers: the oracle's training net reads conv4_6 through conv4_6_..._split_0."""
    net = load_weights(DATA / "oracle" / "train" / "bn_train" / "init.caffemodel")
    aux = net.by_name()[AuxHead.NAME]
    assert aux.bottom[0] != "conv4_6" and "split" in aux.bottom[0]
    config = config_from_net(net)
    assert config.aux and config.aux_after == "conv4" and config.aux_block == "conv4_6"
