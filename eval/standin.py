"""Tiny stand-in models with the PSPNet call signature, for tests and benchmarks of the
protocol (no weights to download): a fixed random 8x8/stride-8 convolution to C classes at
output stride 8, then Caffe's corner-aligned bilinear zoom by 8 (60 -> 473, 90 -> 713).

    python eval/run.py --model pspnet_caffe.eval.standin:voc --data-root ... --dataset voc
"""
from __future__ import annotations

import torch
from torch import nn

from psp_torch.classes import CLASS_NAMES, PALETTES
from psp_torch.layers.interp import interp, interp_output_size
from psp_torch.presets import BY_DATASET


class TinySegNet(nn.Module):
    def __init__(self, dataset: str, seed: int = 0):
        super().__init__()
        p = BY_DATASET[dataset]
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, p.num_classes, 8, stride=8, padding=4)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 1e-3)
            self.conv.bias.copy_(torch.randn(p.num_classes, generator=g) * 0.1)
        self.meta = {"name": f"tinysegnet_{dataset}", "dataset": dataset,
                     "num_classes": p.num_classes, "class_names": list(CLASS_NAMES[dataset]),
                     "palette": PALETTES[dataset].tolist(), "crop_size": p.crop_size,
                     "base_size": p.base_size, "mean_rgb": list(p.mean_rgb),
                     "channel_order": "BGR"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        size = interp_output_size(y.shape[2], y.shape[3], zoom_factor=8)
        return interp(y, size)


def voc() -> TinySegNet:
    return TinySegNet("voc").eval()


def ade20k() -> TinySegNet:
    return TinySegNet("ade20k").eval()


def cityscapes() -> TinySegNet:
    return TinySegNet("cityscapes").eval()
