"""The three released PSPNet configurations: the one place their settings live.

CLI defaults, converter recognition and evaluation defaults all read these.
Class names and palettes come from `psp_torch.classes`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Mean colour the authors subtract, RGB order; the network is fed BGR.
MEAN_RGB = (123.68, 116.779, 103.939)
CHANNEL_ORDER = "BGR"

BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
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
