"""Synthetic "released-style" PSPNet caffemodels, for tests and the benchmark.

The released caffemodels cannot be downloaded here. What public converters
report about them is reproduced: layer types BNData / ConvolutionData /
HoleConvolutionData (dilated convolutions, whose dilation lives in a field this
schema cannot read, so none is stored), the auxiliary branch conv4_24,
conv4_24/bn, conv6_1, and training-only layers (an ImageSegData data layer, the
SoftmaxWithLoss losses, SegAccuracy). No input is declared: the data layer makes it.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from caffe_proto import PSPNET, Layer, Net, caffe_pb2, save_caffemodel
from psp_torch.caffe.deploy import deploy_net
from psp_torch.caffe.weights import caffe_blobs
from psp_torch.pspnet import AuxHead, PSPNet


def _affine_and_statistics(bn, g):
    bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
    bn.bias.copy_(torch.randn(bn.num_features, generator=g) * 0.1)
    bn.running_mean.copy_(torch.randn(bn.num_features, generator=g) * 0.1)
    bn.running_var.copy_(torch.rand(bn.num_features, generator=g) + 0.5)


def _statistics(bn, g):
    bn.running_mean.copy_(torch.rand(bn.num_features, generator=g) - 0.5)
    bn.running_var.copy_(torch.rand(bn.num_features, generator=g) * 1.5 + 0.5)


# how a BN layer is randomised: "affine" (scale, shift, mean and variance: the released-style
# files, the benchmarks) or "statistics" (mean and variance only, scale 1 and shift 0:
# tests/variants.py). Two draws because seeded tests compare numbers measured on each.
BN_DRAWS = {"affine": _affine_and_statistics, "statistics": _statistics}


def random_pspnet(config, seed: int = 0, meta: dict | None = None, *, bn: str = "affine"):
    """A PSPNet with random weights (torch's init after ``torch.manual_seed(seed)``) and
    random, plausible BN layers (`BN_DRAWS[bn]` from a generator seeded ``seed + 1``; BN
    statistics that do not cancel out, so that a wrong statistic shows), in eval mode. The
    project's one builder of a random PSPNet: the benchmarks and the tests call it."""
    draw = BN_DRAWS[bn]
    torch.manual_seed(seed)
    model = PSPNet(config, meta)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                draw(m, g)
    return model.eval()


def _layer(name, type_, bottom, top, fill=None):
    p = caffe_pb2.PSPLayerParameter(name=name, type=type_)
    p.bottom.extend(bottom)
    p.top.extend(top)
    if fill:
        fill(p)
    return Layer(name, type_, list(bottom), list(top), p, [])


def released_style_net(config, state_dict, model_name: str | None = None) -> Net:
    """The weights net of `config` as the released files look (see module doc)."""
    net = deploy_net(config, model_name, aux=config.aux)
    blobs = caffe_blobs(config, state_dict)
    layers = [_layer("data", "ImageSegData", [], ["data", "label"])]
    for layer in net.layers:
        layer = copy.copy(layer)
        param = type(layer.param)()
        param.CopyFrom(layer.param)
        if param.type == "Convolution":
            if len(param.convolution_param.dilation):
                param.type = "HoleConvolutionData"
                param.convolution_param.ClearField("dilation")
            else:
                param.type = "ConvolutionData"
        elif param.type == "BN":
            param.type = "BNData"
        layer.param, layer.type = param, param.type
        layer.blobs = blobs.get(layer.name, [])
        layers.append(layer)

    def loss(weight):
        return lambda p: p.loss_weight.append(weight)
    out, aux, aux_out = PSPNet.OUTPUT, AuxHead.CLASSIFIER, f"{AuxHead.CLASSIFIER}_interp"
    layers.append(_layer("loss", "SoftmaxWithLoss", [out, "label"], ["loss"], loss(1)))
    layers.append(_layer("accuracy", "SegAccuracy", [out, "label"], ["accuracy"]))
    if config.aux:
        zoom = PSPNet.OUTPUT_STRIDE
        layers.append(_layer(aux_out, "Interp", [aux], [aux_out],
                             lambda p: setattr(p.interp_param, "zoom_factor", zoom)))
        layers.append(_layer("loss_aux", "SoftmaxWithLoss", [aux_out, "label"],
                             ["loss_aux"], loss(0.4)))
    return Net(model_name or "", PSPNET, {}, layers, source="<released-style>")


def write_released_style(config, path, seed: int = 0, model_name: str | None = None):
    """Write a released-style caffemodel of `config` with random weights; returns the model."""
    model = random_pspnet(config, seed)
    save_caffemodel(released_style_net(config, model.state_dict(), model_name), path)
    return model
