"""Reading a `PSPNetConfig` off a Caffe net: a deploy prototxt or a caffemodel alone.

A config is derived either from a deploy prototxt (layer parameters) or from a
caffemodel alone (blob shapes, plus the layer parameters Caffe stores with the
weights). Both are `caffe_proto.Net` objects, so one function serves both:
`config_from_net`. The names it looks for are those `psp_torch.caffe.structure` writes.
"""
from __future__ import annotations

import re

from .. import config as _model_config
from ..config import DEFAULT_DILATIONS, PSPNetConfig, released_crop
from .structure import (AUX_CLASSIFIER, AUX_LAYER, CLASSIFIER, CONCAT, HEAD, STEM_LAYERS,
                        pyramid_pool)

_BLOCK = re.compile(r"^conv([2-5])_(\d+)_1x1_reduce$")


class NotAPSPNet(ValueError):
    """The net is not a PSPNet this project can rebuild (the message says what is missing)."""


def _out_channels(layer) -> int:
    """Output channels: the weight blob's first dim, else convolution_param.num_output."""
    if layer.blobs:
        return int(layer.blobs[0].shape[0])
    cp = layer.param.convolution_param
    if cp.HasField("num_output"):
        return int(cp.num_output)
    raise NotAPSPNet(f"layer {layer.name!r} has neither weights nor num_output")


def _first(values, default):
    return int(values[0]) if len(values) else default


def _conv_stride(layer) -> int:
    cp = layer.param.convolution_param
    return int(cp.stride_h) if cp.HasField("stride_h") else _first(cp.stride, 1)


def _conv_dilation(layer, default: int) -> int:
    cp = layer.param.convolution_param
    if len(cp.dilation):
        return int(cp.dilation[0])
    # The released files' HoleConvolutionData keeps its dilation in a field of the
    # DeepLab schema that this schema does not carry: use the released value.
    if layer.type == "HoleConvolutionData":
        return default
    return 1


def config_from_net(net, *, crop_size: int | None = None) -> PSPNetConfig:
    """Derive the config from a prototxt or caffemodel `Net` of a PSPNet.

    Raises `NotAPSPNet` naming the missing layer when the net does not follow
    the release's layer naming.
    """
    layers = net.by_name()

    def need(name):
        if name not in layers:
            raise NotAPSPNet(f"{net.source}: no layer {name!r} (not a PSPNet of the Caffe release)")
        return layers[name]

    stem = tuple(_out_channels(need(n)) for n in STEM_LAYERS)
    counts = {s: 0 for s in (2, 3, 4, 5)}
    for name in layers:
        m = _BLOCK.match(name)
        if m:
            counts[int(m.group(1))] = max(counts[int(m.group(1))], int(m.group(2)))
    blocks = tuple(counts[s] for s in (2, 3, 4, 5))
    if 0 in blocks:
        raise NotAPSPNet(f"{net.source}: missing residual stage conv{2 + blocks.index(0)}_*")
    for s, n in zip((2, 3, 4, 5), blocks):
        for i in range(1, n + 1):
            for part in ("1x1_reduce", "3x3", "1x1_increase"):
                need(f"conv{s}_{i}_{part}")
        need(f"conv{s}_1_1x1_proj")
    mid = tuple(_out_channels(layers[f"conv{s}_1_1x1_reduce"]) for s in (2, 3, 4, 5))
    out = tuple(_out_channels(layers[f"conv{s}_1_1x1_increase"]) for s in (2, 3, 4, 5))

    reduce_stride = _conv_stride(layers["conv3_1_1x1_reduce"])
    conv_stride = _conv_stride(layers["conv3_1_3x3"])
    if sorted((reduce_stride, conv_stride)) != [1, 2]:
        raise NotAPSPNet(f"{net.source}: stage-3 stride not found on conv3_1_1x1_reduce "
                         f"({reduce_stride}) or conv3_1_3x3 ({conv_stride})")
    dilations = tuple(_conv_dilation(layers[f"conv{s}_1_3x3"], DEFAULT_DILATIONS[s - 2])
                      for s in (2, 3, 4, 5))

    bins, reduction, pool, ppm_width = _pyramid_of(net, layers)
    head_width = _out_channels(need(HEAD))
    classes = _out_channels(need(CLASSIFIER))

    # bn_param.eps is a float32 field: read it back as the decimal it was written as
    eps_values = {float(f"{l.param.bn_param.eps:.7g}") if l.param.bn_param.HasField("eps")
                  else 1e-5 for l in net.layers if l.type in ("BN", "BNData")}
    if len(eps_values) > 1:
        raise NotAPSPNet(f"{net.source}: BN layers use different eps values {sorted(eps_values)}")
    bn_eps = eps_values.pop() if eps_values else 1e-5

    if crop_size is None:
        shape = net.inputs.get("data", ())
        if len(shape) == 4 and shape[2] == shape[3] and shape[2] > 0:
            crop_size = int(shape[2])
        else:
            crop_size = released_crop(classes)
            if crop_size is None:
                raise NotAPSPNet(f"{net.source}: {classes} classes match no released model, so "
                                 f"the crop size (which fixes the pooling kernels) is unknown")

    aux_width = 0
    aux_name = AUX_LAYER if AUX_LAYER in layers else f"conv4_{blocks[2] + 1}"
    if aux_name in layers and AUX_CLASSIFIER in layers:
        aux_width = _out_channels(layers[aux_name])

    dropout = PSPNetConfig.__dataclass_fields__["dropout"].default
    drop = layers.get("conv5_4/dropout")
    if drop is not None and drop.param.HasField("dropout_param"):
        dropout = float(f"{drop.param.dropout_param.dropout_ratio:.7g}")

    config = PSPNetConfig(num_classes=classes, blocks=blocks, stem_widths=stem, mid_widths=mid,
                          out_widths=out, stride_on_reduce=reduce_stride == 2,
                          dilations=dilations, crop_size=crop_size, ppm_width=ppm_width,
                          head_width=head_width, aux_width=aux_width, bn_eps=bn_eps,
                          bins=bins, pool=pool, reduction=reduction, dropout=dropout)
    _check_pyramid(net, layers, config)
    return config


_PYRAMID = re.compile(r"^conv5_3_pool(\d+)(_conv)?$")


def _pyramid_of(net, layers):
    """(bins, reduction, pool, ppm_width) of the net's pyramid (bins () when it has none)."""
    found = {}
    for name in layers:
        m = _PYRAMID.match(name)
        if m:
            found.setdefault(int(m.group(1)), set()).add(bool(m.group(2)))
    if not found:
        return (), True, "ave", PSPNetConfig.__dataclass_fields__["ppm_width"].default
    bins = _bin_order(net, layers, found)
    with_conv = {b for b, kinds in found.items() if True in kinds}
    if with_conv and with_conv != set(bins):
        missing = sorted(set(bins) - with_conv)
        raise NotAPSPNet(f"{net.source}: pyramid levels {missing} have no conv5_3_pool*_conv "
                         f"while the others have one")
    pool = "ave"
    layer = layers.get(pyramid_pool(bins[0]))
    if layer is not None and layer.param.HasField("pooling_param"):
        pool = "max" if layer.param.pooling_param.pool == 0 else "ave"   # MAX = 0, AVE = 1
    if with_conv:
        return bins, True, pool, _out_channels(layers[f"{pyramid_pool(bins[0])}_conv"])
    return bins, False, pool, PSPNetConfig.__dataclass_fields__["ppm_width"].default


def _bin_order(net, layers, found) -> tuple:
    """The pyramid's bins in `PSPNetConfig.bins` order: the concat holds conv5_3 and then
    the levels' Interps in reverse bin order (`psp_torch.caffe.structure`); without a
    concat layer (a caffemodel written without one), ascending."""
    concat = layers.get(CONCAT)
    if concat is None or not concat.bottom:
        return tuple(sorted(found))
    order = []
    for bottom in reversed(list(concat.bottom)[1:]):
        m = re.match(r"^conv5_3_pool(\d+)_interp$", bottom)
        if m is None:
            raise NotAPSPNet(f"{net.source}: {CONCAT} bottom {bottom!r} is not a pyramid "
                             f"level's Interp (conv5_3_pool<bin>_interp)")
        order.append(int(m.group(1)))
    if sorted(order) != sorted(found):
        raise NotAPSPNet(f"{net.source}: {CONCAT} concatenates pyramid levels {order[::-1]}, "
                         f"but the net has levels {sorted(found)}")
    return tuple(order)


def aux_width_of(net) -> int:
    """conv4_24's width when `net` carries the aux head (conv4_24 and conv6_1 with weights), else 0."""
    layers = net.by_name()
    aux, cls = layers.get(AUX_LAYER), layers.get(AUX_CLASSIFIER)
    if aux is not None and cls is not None and aux.blobs and cls.blobs:
        return int(aux.blobs[0].shape[0])
    return 0


def _check_pyramid(net, layers, config):
    """A prototxt's PPM kernels and Interp sizes must be those the crop size implies."""
    for b, k in zip(config.bins, config.pool_kernels):
        pool = layers.get(pyramid_pool(b))
        if pool is None or pool.blobs or not pool.param.HasField("pooling_param"):
            continue
        pp = pool.param.pooling_param
        kernel = int(pp.kernel_h) if pp.HasField("kernel_h") else int(pp.kernel_size)
        if kernel and kernel != k:
            raise NotAPSPNet(f"{net.source}: conv5_3_pool{b} kernel {kernel}, but crop "
                             f"{config.crop_size} implies {k}")


# For one release the names that lived in psp_torch.config before the split stay importable
# there (its docstring lists them); set from here, so that the model side imports nothing of
# the Caffe side.
MOVED_FROM_CONFIG = {"config_from_net": config_from_net, "aux_width_of": aux_width_of,
                     "NotAPSPNet": NotAPSPNet, "STEM_LAYERS": STEM_LAYERS,
                     "AUX_LAYER": AUX_LAYER, "AUX_CLASSIFIER": AUX_CLASSIFIER}
for _name, _value in MOVED_FROM_CONFIG.items():
    setattr(_model_config, _name, _value)

