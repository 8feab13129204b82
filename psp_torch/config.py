"""`PSPNetConfig`: every number that shapes a PSPNet, and the released configurations.

Reading a config off a Caffe net (prototxt or caffemodel) is the Caffe side's:
`psp_torch.caffe.read_config.config_from_net`. The released models and the slim oracle
nets (every ``num_output`` divided by 16) are all instances.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from .presets import BLOCKS, DROPOUT, PRESETS

DEFAULT_DILATIONS = (1, 1, 2, 4)
STAGES = (2, 3, 4, 5)           # the residual stages conv2 .. conv5
_BLOCK = re.compile(r"^conv([2-5])(?:_([1-9][0-9]*))?$")


def block_name(stage: int, index: int) -> str:
    """Residual block `index` (1..) of stage `stage` (2..5): conv{stage}_{index}."""
    return f"conv{stage}_{index}"


def parse_block_name(name: str) -> tuple[int, int | None] | None:
    """(stage, index) of a `block_name`, (stage, None) of a stage's name (conv2 .. conv5),
    None for any other name."""
    m = _BLOCK.match(name)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)) if m.group(2) else None


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
    aux_after       the residual block the aux head reads: a stage ("conv4": its last block,
                    the release) or one block ("conv3_2"); moving the head is this value
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
    dropout: float = DROPOUT
    pool: str = "ave"
    reduction: bool = True
    aux_after: str = "conv4"

    def __post_init__(self):
        if self.pool not in ("ave", "max"):
            raise ValueError(f"pool must be 'ave' or 'max', not {self.pool!r}")
        if any(b < 1 or b > self.feature_size for b in self.bins) or len(set(self.bins)) != len(self.bins):
            raise ValueError(f"bins {list(self.bins)}: each bin must be distinct and within "
                             f"1..{self.feature_size} (the stage-5 side at crop {self.crop_size})")
        if len(self.blocks) != 4 or min(self.blocks) < 1:
            raise ValueError(f"blocks {list(self.blocks)}: four stages of at least one block")
        self.aux_position    # a block this config has (raises ValueError otherwise)

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

    def block_names(self) -> tuple[tuple[str, ...], ...]:
        """The residual blocks' names per stage: conv2_1, conv2_2, ... conv5_3 (the release's
        Caffe names; every other name of a block's layers and tops extends its block's)."""
        return tuple(tuple(block_name(s, i) for i in range(1, n + 1))
                     for s, n in zip(STAGES, self.blocks))

    @property
    def aux_position(self) -> tuple[int, int]:
        """(stage 2..5, block 1..) `aux_after` names (a stage alone: its last block)."""
        parsed = parse_block_name(str(self.aux_after))
        if parsed is not None:
            stage, index = parsed
            count = self.blocks[STAGES.index(stage)]
            if index is None or index <= count:
                return stage, index or count
        raise ValueError(f"aux_after {self.aux_after!r}: not a stage (conv2 .. conv5) nor a "
                         f"block of one (conv2_1 .. conv5_{self.blocks[3]}, stage counts "
                         f"{list(self.blocks)})")

    @property
    def aux_block(self) -> str:
        """The name of the block whose output the aux head reads (conv4_23 in ResNet-101)."""
        return block_name(*self.aux_position)

    @property
    def aux_input_width(self) -> int:
        """Channels of the block the aux head reads."""
        return self.out_widths[STAGES.index(self.aux_position[0])]

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "PSPNetConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown PSPNet config fields: {sorted(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    def canonical(self) -> "PSPNetConfig":
        """The same network with the fields it does not use at their defaults: ``ppm_width``
        without dimension reduction or without a pyramid, ``pool`` and ``reduction`` without
        a pyramid. Two configs build the same PSPNet (modules, state_dict, forward) when
        their canonical forms are equal; a config read off a Caffe net is canonical (Caffe
        has nowhere to keep an unused width)."""
        defaults = {f: PSPNetConfig.__dataclass_fields__[f].default
                    for f in ("ppm_width", "pool", "reduction", "aux_after")}
        changes = {}
        if not self.bins:
            changes = {f: defaults[f] for f in ("ppm_width", "pool", "reduction")}
        elif not self.reduction:
            changes = {"ppm_width": defaults["ppm_width"]}
        if not self.aux:
            changes["aux_after"] = defaults["aux_after"]
        else:   # a stage's last block is named by its stage
            stage, index = self.aux_position
            if index == self.blocks[STAGES.index(stage)]:
                changes["aux_after"] = f"conv{stage}"
        return PSPNetConfig(**{**asdict(self), **changes})

    def with_aux(self, aux_width: int = 256, aux_after: str | None = None) -> "PSPNetConfig":
        return PSPNetConfig(**{**asdict(self), "aux_width": aux_width,
                               "aux_after": aux_after or self.aux_after})


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
