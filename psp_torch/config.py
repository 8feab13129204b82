"""`PSPNetConfig`: every number that shapes a PSPNet, and how to read it off a Caffe net.

A config is derived either from a deploy prototxt (layer parameters) or from a
caffemodel alone (blob shapes, plus the layer parameters Caffe stores with the
weights). Both are `caffe_proto.Net` objects, so one function serves both:
`config_from_net`. The released models and the slim oracle nets (every
``num_output`` divided by 16) are all instances.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from .presets import BLOCKS, PRESETS

STEM_LAYERS = ("conv1_1_3x3_s2", "conv1_2_3x3", "conv1_3_3x3")
AUX_LAYER = "conv4_24"          # the released files' name for the aux 3x3 conv (any depth)
AUX_CLASSIFIER = "conv6_1"
DEFAULT_DILATIONS = (1, 1, 2, 4)
_BLOCK = re.compile(r"^conv([2-5])_(\d+)_1x1_reduce$")


class NotAPSPNet(ValueError):
    """The net is not a PSPNet this project can rebuild (the message says what is missing)."""


@dataclass(frozen=True)
class PSPNetConfig:
    """Shape of a dilated-ResNet PSPNet (Caffe release layout).

    blocks          bottlenecks per stage conv2..conv5, (3,4,6,3) = ResNet-50, (3,4,23,3) = 101
    stem_widths     outputs of conv1_1_3x3_s2, conv1_2_3x3, conv1_3_3x3
    mid_widths      1x1_reduce / 3x3 width of each stage
    out_widths      1x1_increase (= block output) width of each stage
    stride_on_reduce  stage-3 stride 2 on conv3_1_1x1_reduce (ADE20K) instead of conv3_1_3x3
    dilations       3x3 dilation of each stage (stride 1 in stages 4 and 5)
    crop_size       training crop = deploy input; fixes the PPM kernels and Interp size
    bins            pyramid bins; kernels (= strides) are feature_size // bin; () = no
                    pyramid (the dilated-FCN baseline of the paper's Table 1)
    pool            pyramid pooling "ave" (the release) or "max" (Table 1)
    reduction       1x1 conv + BN + ReLU after each pyramid pooling (the paper's DR, the
                    release); False: the pooled maps are upsampled and concatenated as they are
    ppm_width, head_width   conv5_3_poolN_conv and conv5_4 outputs
    aux_width       conv4_24 output (0 = no auxiliary head)
    bn_eps          BN eps (bn_param.eps, Caffe default 1e-5)
    """
    num_classes: int
    blocks: tuple = (3, 4, 23, 3)
    stem_widths: tuple = (64, 64, 128)
    mid_widths: tuple = (64, 128, 256, 512)
    out_widths: tuple = (256, 512, 1024, 2048)
    stride_on_reduce: bool = False
    dilations: tuple = DEFAULT_DILATIONS
    crop_size: int = 473
    bins: tuple = (1, 2, 3, 6)
    ppm_width: int = 512
    head_width: int = 512
    aux_width: int = 0
    bn_eps: float = 1e-5
    dropout: float = 0.1
    pool: str = "ave"
    reduction: bool = True

    def __post_init__(self):
        if self.pool not in ("ave", "max"):
            raise ValueError(f"pool must be 'ave' or 'max', not {self.pool!r}")
        if any(b < 1 or b > self.feature_size for b in self.bins) or len(set(self.bins)) != len(self.bins):
            raise ValueError(f"bins {list(self.bins)}: each bin must be distinct and within "
                             f"1..{self.feature_size} (the stage-5 side at crop {self.crop_size})")
        if len(self.blocks) != 4 or min(self.blocks) < 1:
            raise ValueError(f"blocks {list(self.blocks)}: four stages of at least one block")

    @property
    def depth(self) -> int:
        """ResNet depth: 3 layers per bottleneck + stem conv + classifier (50, 101)."""
        return 3 * sum(self.blocks) + 2

    @property
    def pyramid_width(self) -> int:
        """Channels each pyramid level adds to the concat (ppm_width, or stage 5's without DR)."""
        return self.ppm_width if self.reduction else self.out_widths[3]

    @property
    def concat_width(self) -> int:
        """conv5_4's input channels: stage 5 plus every pyramid level."""
        return self.out_widths[3] + len(self.bins) * self.pyramid_width

    @property
    def feature_size(self) -> int:
        """Stage-5 side at the crop size: stride-2 conv, stride-2 ceil pool, one stride 2."""
        return (self.crop_size - 1) // 8 + 1

    @property
    def pool_kernels(self) -> tuple:
        """PPM AVE kernels (= strides) in bin order, as the prototxt fixes them."""
        return tuple(self.feature_size // b for b in self.bins)

    @property
    def aux(self) -> bool:
        return self.aux_width > 0

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "PSPNetConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown PSPNet config fields: {sorted(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    def with_aux(self, aux_width: int = 256) -> "PSPNetConfig":
        return PSPNetConfig(**{**asdict(self), "aux_width": aux_width})


def preset_config(name: str, aux: bool = False) -> PSPNetConfig:
    """The full-size configuration of a released model (`psp_torch.presets.PRESETS`)."""
    p = PRESETS[name]
    return PSPNetConfig(num_classes=p.num_classes, blocks=BLOCKS[p.depth],
                        stride_on_reduce=p.stride_on_reduce, crop_size=p.crop_size,
                        bins=tuple(p.bins), aux_width=256 if aux else 0)


def released_crop(num_classes: int) -> int | None:
    """Crop of the released models by class count: 473 for 150 or 21, 713 for 19."""
    for p in PRESETS.values():
        if p.num_classes == num_classes:
            return p.crop_size
    return None


def match_preset(config: PSPNetConfig):
    """The released preset this config is a (possibly slimmer) instance of, or None."""
    for p in PRESETS.values():
        if (p.num_classes == config.num_classes and BLOCKS[p.depth] == config.blocks
                and p.stride_on_reduce == config.stride_on_reduce
                and p.crop_size == config.crop_size):
            return p
    return None


def is_standard_width(config: PSPNetConfig) -> bool:
    ref = PSPNetConfig(num_classes=config.num_classes)
    return (config.stem_widths, config.mid_widths, config.out_widths, config.ppm_width,
            config.head_width) == (ref.stem_widths, ref.mid_widths, ref.out_widths,
                                   ref.ppm_width, ref.head_width)


# --- reading a config off a Caffe net --------------------------------------------------------

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
    head_width = _out_channels(need("conv5_4"))
    classes = _out_channels(need("conv6"))

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
    bins = tuple(sorted(found))
    if not bins:
        return (), True, "ave", PSPNetConfig.__dataclass_fields__["ppm_width"].default
    with_conv = {b for b, kinds in found.items() if True in kinds}
    if with_conv and with_conv != set(bins):
        missing = sorted(set(bins) - with_conv)
        raise NotAPSPNet(f"{net.source}: pyramid levels {missing} have no conv5_3_pool*_conv "
                         f"while the others have one")
    pool = "ave"
    layer = layers.get(f"conv5_3_pool{bins[0]}")
    if layer is not None and layer.param.HasField("pooling_param"):
        pool = "max" if layer.param.pooling_param.pool == 0 else "ave"   # MAX = 0, AVE = 1
    if with_conv:
        return bins, True, pool, _out_channels(layers[f"conv5_3_pool{bins[0]}_conv"])
    return bins, False, pool, PSPNetConfig.__dataclass_fields__["ppm_width"].default


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
        pool = layers.get(f"conv5_3_pool{b}")
        if pool is None or pool.blobs or not pool.param.HasField("pooling_param"):
            continue
        pp = pool.param.pooling_param
        kernel = int(pp.kernel_h) if pp.HasField("kernel_h") else int(pp.kernel_size)
        if kernel and kernel != k:
            raise NotAPSPNet(f"{net.source}: conv5_3_pool{b} kernel {kernel}, but crop "
                             f"{config.crop_size} implies {k}")
