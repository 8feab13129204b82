"""A PSPNet config -> the deploy net in the release's own layout (a `caffe_proto.Net`).

The layers, their order and their parameters are `psp_torch.caffe.structure.caffe_layers`;
this module only writes them as Caffe messages, with the release's cosmetic fields.

The generated layers carry exactly the fields the authors' deploy prototxts carry
(``param`` lr/decay multipliers, msra fillers, explicit ``pad: 0`` on the
backbone 1x1 convs and none on the pyramid convs, BN fillers, momentum 0.95,
frozen), so that for the three released configurations the parsed result equals
the parsed released prototxt (tests/test_export.py). Used by the exporter, by
the converter when a caffemodel comes without a prototxt, and by ``--verify``.

The paper's variants (`PSPNetConfig.bins` / ``pool`` / ``reduction``, any depth) are
written the same way: MAX pooling layers for ``pool="max"``, no ``conv5_3_pool*_conv``
without dimension reduction (pool -> Interp -> Concat), and no pyramid nor concat for
``bins=()`` (conv5_4 on conv5_3). Caffe expresses all of them.

The auxiliary head of the training net (conv4_24 3x3 pad 1 + BN + ReLU + dropout,
conv6_1 1x1 with bias) can be appended for weight files; its training-time
parameters are not published, so those layers carry the backbone's settings.
"""
from __future__ import annotations

from caffe_proto import PSPNET, Layer, Net
from caffe_proto import caffe_pb2

from ..config import PSPNetConfig, match_preset
from ..presets import BN_MOMENTUM, MULTIPLIERS
from .structure import LayerSpec, caffe_layers

# BN's mean and variance blobs: lr 0 (moving averages, changed only by the forward), decay 0.
_BN_STATISTICS = ((0, 0), (0, 0))
# The ADE20K file gives conv5_4/bn's (zero-lr) mean blob decay_mult 1.
_BN_STATISTICS_QUIRKS = {("pspnet50_ade20k", "conv5_4/bn"): ((0, 1), (0, 0))}


def _param_specs(p, mults):
    for lr, decay in mults:
        spec = p.param.add()
        spec.lr_mult, spec.decay_mult = lr, decay


def _convolution(p, layer: LayerSpec, preset_name, bn_eps):
    a = layer.params
    _param_specs(p, [MULTIPLIERS[role] for role in layer.roles])
    cp = p.convolution_param
    cp.num_output = a["num_output"]
    if not a["bias"]:
        cp.bias_term = False
    if a["pad"] is not None:
        cp.pad.append(a["pad"])
    cp.kernel_size.append(a["kernel"])
    cp.stride.append(a["stride"])
    cp.weight_filler.type = "msra"
    if a["dilation"] != 1:
        cp.dilation.append(a["dilation"])


def _bn(p, layer: LayerSpec, preset_name, bn_eps):
    _param_specs(p, [MULTIPLIERS[role] for role in layer.roles]
                 + list(_BN_STATISTICS_QUIRKS.get((preset_name, layer.name), _BN_STATISTICS)))
    bp = p.bn_param
    bp.slope_filler.type, bp.slope_filler.value = "constant", 1
    bp.bias_filler.type, bp.bias_filler.value = "constant", 0
    if bn_eps != 1e-5:
        bp.eps = bn_eps
    bp.frozen = True
    bp.momentum = BN_MOMENTUM


def _pooling(p, layer: LayerSpec, preset_name, bn_eps):
    a = layer.params
    pp = p.pooling_param
    pp.pool = getattr(caffe_pb2.PoolingParameter, a["pool"])
    pp.kernel_size, pp.stride = a["kernel"], a["stride"]
    if a["pad"] is not None:
        pp.pad = a["pad"]


def _interp(p, layer: LayerSpec, preset_name, bn_eps):
    ip = p.interp_param
    if "zoom" in layer.params:
        ip.zoom_factor = layer.params["zoom"]
    else:
        ip.height, ip.width = layer.params["height"], layer.params["width"]


def _eltwise(p, layer: LayerSpec, preset_name, bn_eps):
    p.eltwise_param.operation = caffe_pb2.EltwiseParameter.SUM


def _dropout(p, layer: LayerSpec, preset_name, bn_eps):
    p.dropout_param.dropout_ratio = layer.params["ratio"]


_FILL = {"Convolution": _convolution, "BN": _bn, "Pooling": _pooling, "Interp": _interp,
         "Eltwise": _eltwise, "Dropout": _dropout}


def to_caffe_layer(layer: LayerSpec, preset_name: str | None, bn_eps: float) -> Layer:
    """One `caffe_proto.Layer` (no blobs) carrying the fields the release writes."""
    p = caffe_pb2.PSPLayerParameter()
    p.name, p.type = layer.name, layer.type
    p.bottom.extend(layer.bottom)
    p.top.extend(layer.top)
    fill = _FILL.get(layer.type)
    if fill:
        fill(p, layer, preset_name, bn_eps)
    return Layer(layer.name, layer.type, list(layer.bottom), list(layer.top), p, [])


def deploy_net(config: PSPNetConfig, model_name: str | None = None, *,
               aux: bool = False, input_size: tuple | None = None) -> Net:
    """The deploy net (input ``data`` 1x3xCxC) of `config`; with ``aux`` the aux head appended.

    The released file the config is an instance of (`match_preset`, slim widths
    included) decides its few cosmetic ``param`` quirks; `model_name` only labels the net.
    ``input_size`` (H, W): write the net for that input instead of the crop (input shape,
    the pyramid's Interp sizes; see `psp_torch.caffe.structure`).
    """
    preset = match_preset(config)
    preset_name = preset.name if preset else None
    h, w = input_size or (config.crop_size, config.crop_size)
    layers = [to_caffe_layer(layer, preset_name, config.bn_eps)
              for layer in caffe_layers(config, aux=aux, input_size=(h, w))]
    return Net("", PSPNET, {"data": (1, 3, h, w)}, layers,
               source=f"<deploy of {model_name or 'PSPNet'}>")
