"""Reading a `PSPNetConfig` off a Caffe net: a deploy prototxt or a caffemodel alone.

A config is derived either from a deploy prototxt (layer parameters) or from a
caffemodel alone (blob shapes, plus the layer parameters Caffe stores with the
weights). Both are `caffe_proto.Net` objects, so one function serves both:
`config_from_net`. The names it looks for are the ones the model's blocks declare
(`psp_torch.pspnet`, collected by `psp_torch.caffe.structure`).
"""
from __future__ import annotations

from ..config import (DEFAULT_DILATIONS, STAGES, PSPNetConfig, block_name, parse_block_name,
                      released_crop)
from ..pspnet import AuxHead, Bottleneck, Head, PSPNet, PyramidPooling, PyramidStage, Stem
from .structure import in_place

REDUCE, CONV3X3, INCREASE = Bottleneck.PARTS
CONCAT, HEAD, CLASSIFIER = PyramidPooling.CONCAT, Head.NAME, PSPNet.CLASSIFIER


def _part(stage: int, index: int, part: str) -> str:
    """The layer `part` (a `Bottleneck.PARTS` or ``PROJECTION``) of block convS_I."""
    return f"{block_name(stage, index)}_{part}"


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

    stem = tuple(_out_channels(need(n)) for n in Stem.CONVS)
    counts = {s: 0 for s in STAGES}
    for name in layers:
        block = parse_block_name(name[:-len(REDUCE) - 1]) if name.endswith(f"_{REDUCE}") else None
        if block is not None and block[1] is not None:
            counts[block[0]] = max(counts[block[0]], block[1])
    blocks = tuple(counts[s] for s in STAGES)
    if 0 in blocks:
        raise NotAPSPNet(f"{net.source}: missing residual stage conv{2 + blocks.index(0)}_*")
    for s, n in zip(STAGES, blocks):
        for i in range(1, n + 1):
            for part in Bottleneck.PARTS:
                need(_part(s, i, part))
        need(_part(s, 1, Bottleneck.PROJECTION))
    mid = tuple(_out_channels(layers[_part(s, 1, REDUCE)]) for s in STAGES)
    out = tuple(_out_channels(layers[_part(s, 1, INCREASE)]) for s in STAGES)

    strided = _part(3, 1, REDUCE), _part(3, 1, CONV3X3)
    reduce_stride, conv_stride = (_conv_stride(layers[n]) for n in strided)
    if sorted((reduce_stride, conv_stride)) != [1, 2]:
        raise NotAPSPNet(f"{net.source}: stage-3 stride not found on {strided[0]} "
                         f"({reduce_stride}) or {strided[1]} ({conv_stride})")
    dilations = tuple(_conv_dilation(layers[_part(s, 1, CONV3X3)], DEFAULT_DILATIONS[s - 2])
                      for s in STAGES)

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

    aux_width, aux_after = 0, PSPNetConfig.aux_after
    aux_name = AuxHead.NAME if AuxHead.NAME in layers else block_name(4, blocks[2] + 1)
    if aux_name in layers and AuxHead.CLASSIFIER in layers:
        aux_width = _out_channels(layers[aux_name])
        aux_after = _aux_after(net, layers[aux_name], blocks)

    dropout = PSPNetConfig.__dataclass_fields__["dropout"].default
    drop = layers.get(in_place(HEAD, "dropout"))
    if drop is not None and drop.param.HasField("dropout_param"):
        dropout = float(f"{drop.param.dropout_param.dropout_ratio:.7g}")

    config = PSPNetConfig(num_classes=classes, blocks=blocks, stem_widths=stem, mid_widths=mid,
                          out_widths=out, stride_on_reduce=reduce_stride == 2,
                          dilations=dilations, crop_size=crop_size, ppm_width=ppm_width,
                          head_width=head_width, aux_width=aux_width, aux_after=aux_after,
                          bn_eps=bn_eps, bins=bins, pool=pool, reduction=reduction,
                          dropout=dropout)
    _check_pyramid(net, layers, config)
    return config.canonical()


def _through_splits(net, blob: str) -> str:
    """The blob a Split layer copies when `blob` is one of its tops (Caffe inserts them where
    a blob feeds several layers, and a caffemodel it saved keeps them), else `blob`."""
    splits = {top: layer.bottom[0] for layer in net.layers
              if layer.type == "Split" and len(layer.bottom) == 1 for top in layer.top}
    seen = set()
    while blob in splits and blob not in seen:
        seen.add(blob)
        blob = splits[blob]
    return blob


def _aux_after(net, layer, blocks) -> str:
    """The block the aux head reads: its conv's bottom, through Caffe's Split layers (a file
    written without bottoms: the release's place, `PSPNetConfig.aux_after`'s default)."""
    if not layer.bottom:
        return PSPNetConfig.aux_after
    bottom = _through_splits(net, layer.bottom[0])
    parsed = parse_block_name(bottom)
    if parsed is None or parsed[1] is None or parsed[1] > blocks[STAGES.index(parsed[0])]:
        raise NotAPSPNet(f"{net.source}: layer {layer.name!r} (the aux head) reads {bottom!r}, which is not "
                         f"the output of a residual block (convS_I)")
    return bottom


def _pyramid_level(name: str, suffix: str = "") -> int | None:
    """The bin of a pyramid level's layer name (`PyramidPooling.level` + `suffix`), else None."""
    prefix = PyramidPooling.PREFIX
    if not (name.startswith(prefix) and name.endswith(suffix)):
        return None
    digits = name[len(prefix):len(name) - len(suffix)]
    return int(digits) if digits.isdigit() and digits.isascii() else None


def _pyramid_of(net, layers):
    """(bins, reduction, pool, ppm_width) of the net's pyramid (bins () when it has none)."""
    found = {}
    for name in layers:
        for suffix, with_conv in (("", False), (PyramidStage.CONV, True)):
            b = _pyramid_level(name, suffix)
            if b is not None:
                found.setdefault(b, set()).add(with_conv)
    if not found:
        return (), True, "ave", PSPNetConfig.__dataclass_fields__["ppm_width"].default
    bins = _bin_order(net, layers, found)
    with_conv = {b for b, kinds in found.items() if True in kinds}
    if with_conv and with_conv != set(bins):
        missing = sorted(set(bins) - with_conv)
        raise NotAPSPNet(f"{net.source}: pyramid levels {missing} have no "
                         f"{PyramidPooling.level('*')}{PyramidStage.CONV} while the others "
                         f"have one")
    pool = "ave"
    layer = layers.get(PyramidPooling.level(bins[0]))
    if layer is not None and layer.param.HasField("pooling_param"):
        pool = "max" if layer.param.pooling_param.pool == 0 else "ave"   # MAX = 0, AVE = 1
    if with_conv:
        return bins, True, pool, _out_channels(
            layers[f"{PyramidPooling.level(bins[0])}{PyramidStage.CONV}"])
    return bins, False, pool, PSPNetConfig.__dataclass_fields__["ppm_width"].default


def _bin_order(net, layers, found) -> tuple:
    """The pyramid's bins in `PSPNetConfig.bins` order: the concat holds conv5_3 and then
    the levels' Interps in reverse bin order (`psp_torch.pspnet.PyramidPooling`); without a
    concat layer (a caffemodel written without one), ascending."""
    concat = layers.get(CONCAT)
    if concat is None or not concat.bottom:
        return tuple(sorted(found))
    order = []
    for bottom in reversed(list(concat.bottom)[1:]):
        b = _pyramid_level(bottom, PyramidPooling.INTERP)
        if b is None:
            raise NotAPSPNet(f"{net.source}: {CONCAT} bottom {bottom!r} is not a pyramid "
                             f"level's Interp ({PyramidPooling.level('<bin>')}"
                             f"{PyramidPooling.INTERP})")
        order.append(b)
    if sorted(order) != sorted(found):
        raise NotAPSPNet(f"{net.source}: {CONCAT} concatenates pyramid levels {order[::-1]}, "
                         f"but the net has levels {sorted(found)}")
    return tuple(order)


def with_aux_of(config: PSPNetConfig, net) -> PSPNetConfig:
    """`config` with the aux head `net` carries (conv4_24 and conv6_1 with weights: its width,
    and the block it reads where the file keeps its bottom); `config` when it has none."""
    layers = net.by_name()
    aux, cls = layers.get(AuxHead.NAME), layers.get(AuxHead.CLASSIFIER)
    if aux is None or cls is None or not aux.blobs or not cls.blobs:
        return config
    return config.with_aux(int(aux.blobs[0].shape[0]),
                           _aux_after(net, aux, config.blocks)).canonical()


def _check_pyramid(net, layers, config):
    """A prototxt's PPM kernels and Interp sizes must be those the crop size implies."""
    for b, k in zip(config.bins, config.pool_kernels):
        pool = layers.get(PyramidPooling.level(b))
        if pool is None or pool.blobs or not pool.param.HasField("pooling_param"):
            continue
        pp = pool.param.pooling_param
        kernel = int(pp.kernel_h) if pp.HasField("kernel_h") else int(pp.kernel_size)
        if kernel and kernel != k:
            raise NotAPSPNet(f"{net.source}: {PyramidPooling.level(b)} kernel {kernel}, but crop "
                             f"{config.crop_size} implies {k}")
