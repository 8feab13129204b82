"""BN: the PSPNet fork's batch normalisation layer (slope and bias built in).

Caffe arithmetic (``BNLayer::Forward_cpu``, frozen or TEST phase), per channel c:
``y = (x - mean[c]) * (var[c] + eps)^(-1/2) * slope[c] + bias[c]``, computed in
that order in float32, with eps from ``bn_param.eps`` (default 1e-5). Blobs:
slope, bias, mean, variance, each shaped 1xCx1x1. The released caffemodels
call the type ``BNData`` (an alias).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .base import CaffeLayer, channel_count, same_shape_checking_channels, sub_param


def channel_view(t: torch.Tensor, ndim: int) -> torch.Tensor:
    """A per-channel (1, C, 1, 1)-like tensor viewed to broadcast over ``ndim`` axes."""
    return t.reshape((1, -1) + (1,) * (ndim - 2))


class BN(CaffeLayer):
    BLOBS = ("slope", "bias", "mean", "var")

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.channels, self.eps = channels, float(np.float32(eps))
        shape = (1, channels, 1, 1)
        self.slope = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("var", torch.ones(shape))

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        return cls(channel_count(bottom_shapes[0], "BN"), sub_param(layer, "bn_param").eps)

    def output_shapes(self, bottom_shapes):
        return same_shape_checking_channels(bottom_shapes, self.channels)

    def forward(self, x):
        n = x.dim()
        inv_std = torch.pow(self.var + self.eps, -0.5)
        return ((x - channel_view(self.mean, n)) * channel_view(inv_std, n)
                * channel_view(self.slope, n) + channel_view(self.bias, n))

    def extra_repr(self):
        return f"{self.channels}, eps={self.eps:g}"
