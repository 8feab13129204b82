"""The three released PSPNet configurations: the one place their settings live.

CLI defaults and converter recognition read these. What a released model shares with its
dataset (classes, crop, base size, the split and the published numbers, the training recipe)
is the dataset's: `psp_torch.datasets` (a Preset derives it from ``dataset``).
"""
from __future__ import annotations

from dataclasses import dataclass

from .datasets import Published
from .datasets import get as get_dataset

# Mean colour the authors subtract, RGB order; the network is fed BGR.
MEAN_RGB = (123.68, 116.779, 103.939)
CHANNEL_ORDER = "BGR"

# Bottlenecks per stage conv2..conv5 of the deep-stem ResNets (paper Table 3: 50/101/152/269).
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 269: (3, 30, 48, 8)}


@dataclass(frozen=True)
class Preset:
    name: str                   # factory name, e.g. "pspnet101_voc2012"
    caffe_name: str             # released file stem, e.g. "pspnet101_VOC2012"
    dataset: str                # a `psp_torch.datasets` name
    depth: int                  # 50 or 101
    stride_on_reduce: bool      # stage-3 stride on conv3_1_1x1_reduce (ADE20K), else on conv3_1_3x3
    prototxt: str               # the released deploy prototxt's file name

    # --- the dataset's facts (psp_torch.datasets.<module>) -----------------------------------
    @property
    def num_classes(self) -> int:
        return get_dataset(self.dataset).num_classes

    @property
    def crop_size(self) -> int:
        """Training crop = deploy input size."""
        return get_dataset(self.dataset).crop_size

    @property
    def base_size(self) -> int:
        """Evaluation: long side at scale 1 is base_size + 1."""
        return get_dataset(self.dataset).eval.base_size

    @property
    def split(self) -> str:
        """The split the published numbers are on."""
        return get_dataset(self.dataset).eval.split

    @property
    def published_ss(self) -> Published | None:
        return get_dataset(self.dataset).eval.published_ss

    @property
    def published_ms(self) -> Published | None:
        return get_dataset(self.dataset).eval.published_ms

    @property
    def blocks(self) -> tuple[int, ...]:
        return BLOCKS[self.depth]


PRESETS = {
    p.name: p for p in [
        Preset("pspnet50_ade20k", "pspnet50_ADE20K", "ade20k", 50, True,
               "pspnet50_ADE20K_473.prototxt"),
        Preset("pspnet101_voc2012", "pspnet101_VOC2012", "voc", 101, False,
               "pspnet101_VOC2012_473.prototxt"),
        Preset("pspnet101_cityscapes", "pspnet101_cityscapes", "cityscapes", 101, False,
               "pspnet101_cityscapes_713.prototxt"),
    ]
}
BY_DATASET = {p.dataset: p for p in PRESETS.values()}


# --- training facts of the release -----------------------------------------------------------
# Read off the released deploy prototxts (every layer's `param { lr_mult decay_mult }`, every
# `bn_param { momentum }`, `dropout_ratio`) and the oracle's TRAIN net for the aux head, which
# the release does not ship. One (lr_mult, decay_mult) pair per parameter role (which layers
# are new, i.e. added to the ImageNet ResNet, is the model's: `PSPNet.NEW_LAYERS`; a
# parameter's role: `psp_torch.pspnet.parameter_role`; the deploy prototxt's `param`
# fields and the optimiser's groups both derive from these two):
#   backbone      conv weights of the ImageNet ResNet (stem, conv2..conv5)        1, 1
#   backbone_bn   their BN slope and bias                                         1, 0
#   new           conv weights of the new layers (pyramid, conv5_4, conv6, aux)  10, 1
#   new_bn        BN slope and bias of the new convs                             10, 0
#   new_bias      the new convs' biases (conv6, conv6_1)                         20, 1
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

