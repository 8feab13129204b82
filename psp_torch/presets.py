"""The three released PSPNet configurations: the one place their settings live.

CLI defaults, converter recognition and evaluation defaults all read these.
Class names and palettes come from `psp_torch.classes`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Mean colour the authors subtract, RGB order; the network is fed BGR.
MEAN_RGB = (123.68, 116.779, 103.939)
CHANNEL_ORDER = "BGR"

# Bottlenecks per stage conv2..conv5 of the deep-stem ResNets (paper Table 3: 50/101/152/269).
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 269: (3, 30, 48, 8)}
MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


@dataclass(frozen=True)
class Published:
    """A published (mIoU, pixel accuracy) pair in percent; None where not published."""
    miou: float
    pixel_acc: float | None = None


@dataclass(frozen=True)
class Preset:
    name: str                   # factory name, e.g. "pspnet101_voc2012"
    caffe_name: str             # released file stem, e.g. "pspnet101_VOC2012"
    dataset: str                # "ade20k" | "voc" | "cityscapes"
    depth: int                  # 50 or 101
    num_classes: int
    crop_size: int              # training crop = deploy input size
    base_size: int              # evaluation: long side at scale 1 is base_size + 1
    stride_on_reduce: bool      # stage-3 stride on conv3_1_1x1_reduce (ADE20K), else on conv3_1_3x3
    prototxt: str               # the released deploy prototxt's file name
    split: str                  # split the published numbers are on
    published_ss: Published | None = None
    published_ms: Published | None = None
    mean_rgb: tuple = MEAN_RGB
    bins: tuple = (1, 2, 3, 6)

    @property
    def feature_size(self) -> int:
        """Side of the stage-5 map at the crop size (output stride 8, Caffe arithmetic)."""
        return (self.crop_size - 1) // 8 + 1

    @property
    def pool_kernels(self) -> tuple[int, ...]:
        """PPM AVE-pool kernels (= strides) as in the prototxt, bins 1, 2, 3, 6."""
        return tuple(self.feature_size // b for b in self.bins)

    @property
    def blocks(self) -> tuple[int, ...]:
        return BLOCKS[self.depth]


PRESETS = {
    p.name: p for p in [
        Preset("pspnet50_ade20k", "pspnet50_ADE20K", "ade20k", 50, 150, 473, 512, True,
               "pspnet50_ADE20K_473.prototxt", "val",
               Published(41.68, 80.04), Published(42.78, 80.76)),
        Preset("pspnet101_voc2012", "pspnet101_VOC2012", "voc", 101, 21, 473, 512, False,
               "pspnet101_VOC2012_473.prototxt", "test",
               None, Published(85.41)),
        Preset("pspnet101_cityscapes", "pspnet101_cityscapes", "cityscapes", 101, 19, 713, 2048,
               False, "pspnet101_cityscapes_713.prototxt", "val",
               Published(79.70, 96.38), Published(80.91, 96.59)),
    ]
}
BY_DATASET = {p.dataset: p for p in PRESETS.values()}


# --- training facts of the release -----------------------------------------------------------
# Read off the released deploy prototxts (every layer's `param { lr_mult decay_mult }`, every
# `bn_param { momentum }`, `dropout_ratio`) and the oracle's TRAIN net for the aux head, which
# the release does not ship. One (lr_mult, decay_mult) pair per parameter role:
#   backbone      conv weights of the ImageNet ResNet (stem, conv2..conv5)        1, 1
#   backbone_bn   their BN slope and bias                                         1, 0
#   new           conv5_3_pool*_conv, conv5_4, conv6 weight, conv4_24, conv6_1 weight  10, 1
#   new_bn        BN slope and bias of the new convs                             10, 0
#   new_bias      conv6 and conv6_1 biases                                       20, 1
# BN mean/variance blobs have lr 0 (moving averages, changed only by the forward).
MULTIPLIERS = {
    "backbone": (1.0, 1.0),
    "backbone_bn": (1.0, 0.0),
    "new": (10.0, 1.0),
    "new_bn": (10.0, 0.0),
    "new_bias": (20.0, 1.0),
}
BN_MOMENTUM = 0.95          # bn_param.momentum of every released BN layer (Caffe's meaning)
DROPOUT = 0.1               # conv5_4/dropout dropout_ratio of every release


@dataclass(frozen=True)
class TrainRecipe:
    """The paper's recipe (section 5.1, section 4) and the release's settings for one dataset.

    Sources: iterations, crop, batch, lr, poly power, momentum, weight decay, aux weight,
    scale and rotation ranges, blur: paper section 5.1 / 4 (rotation and Gaussian blur "for
    ImageNet [= ADE20K, the ImageNet scene parsing challenge] and PASCAL VOC", so off for
    Cityscapes); multipliers, BN momentum, dropout: the release prototxts (above).
    """
    dataset: str
    iterations: int
    crop_size: int
    rotate: bool
    blur: bool
    base_lr: float = 0.01
    power: float = 0.9
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 16
    aux_weight: float = 0.4
    scale_range: tuple = (0.5, 2.0)
    rotate_range: tuple = (-10.0, 10.0)
    blur_kernel: int = 5
    ignore_label: int = 255
    dropout: float = DROPOUT
    bn_momentum: float = BN_MOMENTUM


RECIPES = {
    "ade20k": TrainRecipe("ade20k", 150_000, 473, rotate=True, blur=True),
    "voc": TrainRecipe("voc", 30_000, 473, rotate=True, blur=True),
    "cityscapes": TrainRecipe("cityscapes", 90_000, 713, rotate=False, blur=False),
}
