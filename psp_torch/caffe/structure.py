"""The Caffe layers of a PSPNet, in deploy-prototxt order: the one description of the
network that the Caffe side derives everything from.

`caffe_layers(config)` lists every layer the release's deploy net has for a
`PSPNetConfig`: name, type, bottoms, tops, the parameters the prototxt states, and the
`PSPNet` module that holds its weights. `psp_torch.caffe.deploy` writes it as a
prototxt, `psp_torch.caffe.names` maps its weighted layers to state_dict keys, so the
two cannot disagree. The layout (names as in the authors' files):

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
The pyramid's Interp sizes and the input shape hold for one input size (the crop by
default): `caffe_layers(config, input_size=(H, W))` gives the net for another one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..config import PSPNetConfig
from ..layers import conv_output_size, interp_output_size, pool_output_size

STEM_LAYERS = ("conv1_1_3x3_s2", "conv1_2_3x3", "conv1_3_3x3")
STEM_POOL = "pool1_3x3_s2"
AUX_LAYER = "conv4_24"          # the released files' name for the aux 3x3 conv (any depth)
AUX_CLASSIFIER = "conv6_1"
CONCAT, HEAD, CLASSIFIER, OUTPUT = "conv5_3_concat", "conv5_4", "conv6", "conv6_interp"
ZOOM = 8                        # conv6_interp's zoom_factor: the output stride


class NoCaffeLayout(ValueError):
    """A config the release's Caffe layout cannot express (the message says why)."""


def pyramid_pool(bin_: int) -> str:
    """The Caffe name of pyramid level `bin_`'s pooling (its conv and Interp add suffixes)."""
    return f"conv5_3_pool{bin_}"


@dataclass(frozen=True)
class CaffeLayer:
    """One layer of the deploy net.

    params (by type): Convolution ``num_output, kernel, stride, pad, dilation, bias, lr``
    (``pad`` None: the field is not written, as on the release's pyramid and classifier
    convs; ``lr``: the lr_mult of the weights); BN ``lr``; Pooling ``pool`` ("MAX" |
    "AVE"), ``kernel, stride, pad``; Interp ``height, width`` or ``zoom``; Dropout
    ``ratio``; Eltwise SUM, Concat on channels, ReLU: none.
    ``module``: the dotted `PSPNet` module holding the weights (None: no weights).
    """
    name: str
    type: str
    bottom: tuple
    top: tuple
    params: dict = field(default_factory=dict)
    module: str | None = None
    aux: bool = False


class _Layers:
    """Collects layers and tracks every blob's (H, W) with Caffe's size arithmetic."""

    def __init__(self, input_size):
        self.layers: list[CaffeLayer] = []
        self.sizes = {"data": tuple(input_size)}
        self.aux = False

    def add(self, name, type_, bottom, top=None, module=None, **params):
        top = top or name
        self.layers.append(CaffeLayer(name, type_, (bottom,) if isinstance(bottom, str)
                                      else tuple(bottom), (top,), params, module, self.aux))
        return top

    def conv(self, name, bottom, num_output, kernel, module, *, stride=1, pad=0, dilation=1,
             lr=1, bias=False):
        h, w = self.sizes[bottom]
        p = pad or 0
        self.sizes[name] = (conv_output_size(h, kernel, stride, p, dilation),
                            conv_output_size(w, kernel, stride, p, dilation))
        return self.add(name, "Convolution", bottom, module=module, num_output=num_output,
                        kernel=kernel, stride=stride, pad=pad, dilation=dilation, bias=bias,
                        lr=lr)

    def conv_bn(self, name, bottom, num_output, kernel, conv_module, bn_module, *, relu=True,
                **kw):
        top = self.conv(name, bottom, num_output, kernel, conv_module, **kw)
        self.add(f"{top}/bn", "BN", top, top, module=bn_module, lr=kw.get("lr", 1))
        if relu:
            self.add(f"{top}/relu", "ReLU", top, top)
        return top

    def pool(self, name, bottom, method, kernel, stride, pad=None):
        h, w = self.sizes[bottom]
        self.sizes[name] = (pool_output_size(h, kernel, stride, pad or 0),
                            pool_output_size(w, kernel, stride, pad or 0))
        return self.add(name, "Pooling", bottom, pool=method, kernel=kernel, stride=stride,
                        pad=pad)

    def interp(self, name, bottom, size, zoom=None):
        """Interp to `size`: as ``zoom_factor: zoom`` where that gives it (the release's
        conv6_interp), else as its height and width."""
        h, w = self.sizes[bottom]
        self.sizes[name] = tuple(size)
        if zoom is not None and interp_output_size(h, w, zoom_factor=zoom) == tuple(size):
            return self.add(name, "Interp", bottom, zoom=zoom)
        return self.add(name, "Interp", bottom, height=size[0], width=size[1])

    def same(self, name, type_, bottom, top=None, **params):
        top = self.add(name, type_, bottom, top, **params)
        self.sizes[top] = self.sizes[bottom if isinstance(bottom, str) else bottom[0]]
        return top


def caffe_layers(config: PSPNetConfig, *, aux: bool | None = None,
                 input_size: tuple | None = None) -> list[CaffeLayer]:
    """Every layer of the deploy net of `config` (see the module doc), aux head last.

    ``aux``: append the auxiliary head (default: when the config has one).
    ``input_size``: (H, W) the net is written for (default: the crop); the pyramid's
    Interp layers go to the stage-5 size of that input.
    """
    c = config
    aux = c.aux if aux is None else aux
    if aux and not c.aux:
        raise NoCaffeLayout("aux head asked for, but the config has aux_width 0")
    if aux and c.blocks[2] >= 24:
        raise NoCaffeLayout(f"aux head with {c.blocks[2]} stage-4 blocks: its Caffe name "
                            f"{AUX_LAYER} is that of stage 4's block 24 (the release names the "
                            f"aux layers {AUX_LAYER}, {AUX_LAYER}/bn, {AUX_CLASSIFIER})")
    net = _Layers(input_size or (c.crop_size, c.crop_size))
    x = "data"
    for i, (name, width) in enumerate(zip(STEM_LAYERS, c.stem_widths), 1):
        x = net.conv_bn(name, x, width, 3, f"stem.conv{i}", f"stem.bn{i}",
                        stride=2 if i == 1 else 1, pad=1)
    x = net.pool(STEM_POOL, x, "MAX", 3, 2, pad=1)
    stage4 = None
    for s, n in zip((2, 3, 4, 5), c.blocks):
        k = s - 2
        mid, out, dil = c.mid_widths[k], c.out_widths[k], c.dilations[k]
        for i in range(1, n + 1):
            block, pre = f"layer{s - 1}.{i - 1}", f"conv{s}_{i}"
            stride = 2 if (s == 3 and i == 1) else 1
            rs = stride if c.stride_on_reduce else 1
            y = net.conv_bn(f"{pre}_1x1_reduce", x, mid, 1, f"{block}.conv1", f"{block}.bn1",
                            stride=rs)
            y = net.conv_bn(f"{pre}_3x3", y, mid, 3, f"{block}.conv2", f"{block}.bn2",
                            stride=stride // rs, pad=dil, dilation=dil)
            y = net.conv_bn(f"{pre}_1x1_increase", y, out, 1, f"{block}.conv3", f"{block}.bn3",
                            relu=False)
            shortcut = x
            if i == 1:
                shortcut = net.conv_bn(f"{pre}_1x1_proj", x, out, 1, f"{block}.downsample.0",
                                       f"{block}.downsample.1", stride=stride, relu=False)
            x = net.same(pre, "Eltwise", (shortcut, y))
            net.same(f"{pre}/relu", "ReLU", x, x)
        if s == 4:
            stage4 = x
    feature = net.sizes[x]
    pooled = []
    for j, (bin_, kernel) in enumerate(zip(c.bins, c.pool_kernels)):
        name = pyramid_pool(bin_)
        p = net.pool(name, x, c.pool.upper(), kernel, kernel)
        if c.reduction:
            p = net.conv_bn(f"{name}_conv", p, c.ppm_width, 1, f"ppm.stages.{j}.conv",
                            f"ppm.stages.{j}.bn", lr=10, pad=None)
        pooled.append(net.interp(f"{name}_interp", p, feature))
    if pooled:
        x = net.same(CONCAT, "Concat", [x] + pooled[::-1])
    y = net.conv_bn(HEAD, x, c.head_width, 3, "head.conv", "head.bn", pad=1, lr=10)
    net.same(f"{HEAD}/dropout", "Dropout", y, y, ratio=c.dropout)
    net.conv(CLASSIFIER, y, c.num_classes, 1, "classifier", lr=10, pad=None, bias=True)
    net.interp(OUTPUT, CLASSIFIER, net.sizes["data"], zoom=ZOOM)
    if aux:
        net.aux = True
        a = net.conv_bn(AUX_LAYER, stage4, c.aux_width, 3, "aux.conv", "aux.bn", pad=1, lr=10)
        net.same(f"{AUX_LAYER}/dropout", "Dropout", a, a, ratio=c.dropout)
        net.conv(AUX_CLASSIFIER, a, c.num_classes, 1, "aux.classifier", lr=10, pad=None,
                 bias=True)
    return net.layers
