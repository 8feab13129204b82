"""Tiny stand-in models with the PSPNet call signature, for tests and benchmarks of the
protocol (no weights to download): a fixed random 8x8/stride-8 convolution to C classes at
output stride 8, then Caffe's corner-aligned bilinear zoom by 8 (60 -> 473, 90 -> 713).
Everything it declares about its dataset is the dataset's (`psp_torch.datasets`).

    PYTHONPATH=tests python eval/run.py --model standin:voc --data-root ... --dataset voc
"""
from __future__ import annotations

import torch
from torch import nn

from psp_torch import datasets
from psp_torch.layers.interp import interp, interp_output_size
from psp_torch.presets import CHANNEL_ORDER, MEAN_RGB


class TinySegNet(nn.Module):
    def __init__(self, dataset: str, seed: int = 0):
        super().__init__()
        facts = datasets.get(dataset)
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, facts.num_classes, 8, stride=8, padding=4)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 1e-3)
            self.conv.bias.copy_(torch.randn(facts.num_classes, generator=g) * 0.1)
        self.meta = {"name": f"tinysegnet_{dataset}", "dataset": dataset,
                     "num_classes": facts.num_classes, "class_names": list(facts.classes),
                     "palette": facts.palette.tolist(), "crop_size": facts.crop_size,
                     "base_size": facts.eval.base_size, "mean_rgb": list(MEAN_RGB),
                     "channel_order": CHANNEL_ORDER}

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
