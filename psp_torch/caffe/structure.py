"""The Caffe layers of a PSPNet, in deploy-prototxt order, collected from the model itself.

Each block of `psp_torch.pspnet` declares its Caffe layers next to its forward
(``caffe_layers(net, ...)``, naming them and the modules that compute them);
`caffe_layers(config)` builds the `PSPNet` on the meta device and collects them with a
`LayerCollector`, which reads every number (widths, kernels, strides, pads, dilations,
bias, the lr roles) off the modules: name, type, bottoms, tops, the parameters the
prototxt states, and the `PSPNet` module that holds the weights. `psp_torch.caffe.deploy`
writes the list as a prototxt, `psp_torch.caffe.names` maps its weighted layers to
state_dict keys, so neither can disagree with the forward. The layout it gives (names as
in the authors' files):

    conv1_1_3x3_s2 (s2), conv1_2_3x3, conv1_3_3x3     conv + /bn + /relu      stem.convK / stem.bnK
    pool1_3x3_s2                                      MAX 3/2/1 (ceil)
    conv{s}_{i}_1x1_reduce, _3x3, _1x1_increase       conv + /bn (+ /relu)    layer{s-1}.{i-1}.conv1..3 / bn1..3
    conv{s}_1_1x1_proj                                conv + /bn              layer{s-1}.0.downsample.0 / .1
    conv{s}_{i}                                       Eltwise SUM + /relu
    conv5_3_pool{b}                                   AVE or MAX, kernel = stride = feature_size // b
    conv5_3_pool{b}_conv                              conv + /bn + /relu      ppm.stages.{j}.conv / .bn (with reduction)
    conv5_3_pool{b}_interp                            Interp to the stage-5 size
    conv5_3_concat                                    conv5_3, pool6 .. pool1 (no pyramid: none)
    conv5_4, conv5_4/dropout, conv6, conv6_interp     head.conv / head.bn, classifier; Interp zoom 8
    conv4_24 (+/bn, /relu, /dropout), conv6_1         aux.conv / aux.bn, aux.classifier (aux head, last)

Stage s = 2..5 has ``config.blocks[s - 2]`` blocks; the stage-3 stride sits on
conv3_1_1x1_reduce (``stride_on_reduce``) or conv3_1_3x3, and on conv3_1_1x1_proj.
conv4_24 reads the block `PSPNetConfig.aux_after` names (the release: stage 4's last).
The pyramid's Interp sizes and the input shape hold for one input size (the crop by
default): `caffe_layers(config, input_size=(H, W))` gives the net for another one.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import PSPNetConfig
from ..layers import conv_output_size, interp_output_size, pool_output_size
from ..pspnet import AuxHead, PSPNet, parameter_role

INPUT = "data"


def in_place(top: str, kind: str) -> str:
    """The name of an in-place layer on `top`: ``conv5_4/bn``, ``conv5_4/relu``, ..."""
    return f"{top}/{kind}"


class NoCaffeLayout(ValueError):
    """A config the release's Caffe layout cannot express (the message says why)."""


@dataclass(frozen=True)
class LayerSpec:
    """One layer of the deploy net, as the model's blocks declare it.

    params (by type): Convolution ``num_output, kernel, stride, pad, dilation, bias``
    (``pad`` None: the field is not written, as on the release's new 1x1 convs); BN none;
    Pooling ``pool`` ("MAX" | "AVE"), ``kernel, stride, pad`` (None: not written);
    Interp ``height, width`` or ``zoom``; Dropout ``ratio``; Eltwise SUM, Concat on
    channels, ReLU: none.
    ``module``: the dotted `PSPNet` module holding the weights (None: no weights);
    ``roles``: the `psp_torch.presets.MULTIPLIERS` role of each of its parameters (weight,
    bias), as `psp_torch.pspnet.parameter_role` gives them.
    """
    name: str
    type: str
    bottom: tuple
    top: tuple
    params: dict = field(default_factory=dict)
    module: str | None = None
    roles: tuple = ()
    aux: bool = False


class LayerCollector:
    """What the model's blocks call (``caffe_layers(net, ...)``, `psp_torch.pspnet`): collects
    their layers, reading every number off the modules, and tracks each blob's (H, W) with
    Caffe's size arithmetic."""

    def __init__(self, model: PSPNet, input_size):
        self.layers: list[LayerSpec] = []
        self.sizes = {INPUT: tuple(input_size)}
        self._paths = {id(m): name for name, m in model.named_modules()}
        self._aux = False

    @contextmanager
    def aux_head(self):
        """Layers added inside belong to the training-only aux head."""
        self._aux = True
        try:
            yield
        finally:
            self._aux = False

    def _add(self, name, type_, bottom, top=None, module=None, **params):
        top = top or name
        path, roles = None, ()
        if module is not None:
            path = self._paths[id(module)]
            roles = tuple(parameter_role(f"{path}.{p}", module)
                          for p, _ in module.named_parameters(recurse=False))
        self.layers.append(LayerSpec(name, type_, (bottom,) if isinstance(bottom, str)
                                     else tuple(bottom), (top,), params, path, roles,
                                     self._aux))
        return top

    def _same(self, name, type_, bottom, top=None, **params):
        top = self._add(name, type_, bottom, top, **params)
        self.sizes[top] = self.sizes[bottom if isinstance(bottom, str) else bottom[0]]
        return top

    def conv(self, name, bottom, conv: nn.Conv2d):
        """A Convolution computed by `conv`. The release writes ``pad`` on the ResNet's convs
        always, on the layers it added (`PSPNet.NEW_LAYERS`) only where it is not 0."""
        (k, _), (s, _), (p, _), (d, _) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
        h, w = self.sizes[bottom]
        self.sizes[name] = (conv_output_size(h, k, s, p, d), conv_output_size(w, k, s, p, d))
        top = self._add(name, "Convolution", bottom, module=conv, num_output=conv.out_channels,
                        kernel=k, stride=s, pad=p, dilation=d, bias=conv.bias is not None)
        layer = self.layers[-1]
        if p == 0 and layer.roles[0].startswith("new"):
            layer.params["pad"] = None
        return top

    def bn(self, top, bn: nn.BatchNorm2d):
        return self._add(in_place(top, "bn"), "BN", top, top, module=bn)

    def relu(self, top):
        return self._add(in_place(top, "relu"), "ReLU", top, top)

    def dropout(self, top, dropout: nn.Dropout):
        return self._add(in_place(top, "dropout"), "Dropout", top, top, ratio=dropout.p)

    def conv_bn(self, name, bottom, conv, bn, *, relu=True):
        top = self.bn(self.conv(name, bottom, conv), bn)
        return self.relu(top) if relu else top

    def pool(self, name, bottom, method, kernel, stride, pad):
        """Pooling (``method`` "max" | "ave"); ``pad`` is written where it is not 0."""
        h, w = self.sizes[bottom]
        self.sizes[name] = (pool_output_size(h, kernel, stride, pad),
                            pool_output_size(w, kernel, stride, pad))
        return self._add(name, "Pooling", bottom, pool=method.upper(), kernel=kernel,
                         stride=stride, pad=pad or None)

    def interp(self, name, bottom, like, zoom=None):
        """Interp to blob `like`'s size: as ``zoom_factor: zoom`` where that gives it (the
        release's conv6_interp), else as its height and width."""
        h, w = self.sizes[bottom]
        size = self.sizes[name] = self.sizes[like]
        if zoom is not None and interp_output_size(h, w, zoom_factor=zoom) == tuple(size):
            return self._add(name, "Interp", bottom, zoom=zoom)
        return self._add(name, "Interp", bottom, height=size[0], width=size[1])

    def concat(self, name, bottoms):
        top = self._add(name, "Concat", bottoms)
        h, w = self.sizes[bottoms[0]]
        self.sizes[top] = (h, w)
        return top

    def eltwise_sum(self, name, bottoms):
        return self._same(name, "Eltwise", bottoms)


def caffe_layers(config: PSPNetConfig, *, aux: bool | None = None,
                 input_size: tuple | None = None) -> list[LayerSpec]:
    """Every layer of the deploy net of `config` (see the module doc), aux head last.

    ``aux``: append the auxiliary head (default: when the config has one).
    ``input_size``: (H, W) the net is written for (default: the crop); the pyramid's
    Interp layers go to the stage-5 size of that input.
    """
    aux = config.aux if aux is None else aux
    if aux and not config.aux:
        raise NoCaffeLayout("aux head asked for, but the config has aux_width 0")
    blocks = [name for names in config.block_names() for name in names]
    if aux and AuxHead.NAME in blocks:
        raise NoCaffeLayout(f"aux head with {config.blocks[2]} stage-4 blocks: its Caffe name "
                            f"{AuxHead.NAME} is that of stage 4's block 24 (the release names "
                            f"the aux layers {AuxHead.NAME}, {in_place(AuxHead.NAME, 'bn')}, "
                            f"{AuxHead.CLASSIFIER})")
    with torch.device("meta"):
        model = PSPNet(config)
    net = LayerCollector(model, input_size or (config.crop_size, config.crop_size))
    model.caffe_layers(net, INPUT, aux=aux)
    return net.layers
