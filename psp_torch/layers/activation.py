"""Element-wise layers: ReLU, PReLU, Sigmoid, TanH, Power, Dropout.

Caffe arithmetic:
- ReLU: ``max(x, 0) + negative_slope * min(x, 0)`` (negative_slope default 0);
- PReLU: ``max(x, 0) + a[c] * min(x, 0)``, blob ``a`` (C,) or (1,) when
  ``channel_shared``;
- Sigmoid ``1 / (1 + exp(-x))``; TanH ``tanh(x)``;
- Power: ``(shift + scale * x) ^ power``; when ``power * scale == 0`` the top
  is the constant ``1`` (power 0) or ``shift ^ power``;
- Dropout: the identity at TEST time (Caffe scales by 1/(1-ratio) while training).
"""
from __future__ import annotations

import torch
from torch import nn

from .base import CaffeLayer, channel_count, sub_param


class _SameShape(CaffeLayer):
    def output_shapes(self, bottom_shapes):
        return [tuple(bottom_shapes[0])]

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        return cls()


class ReLU(_SameShape):
    def __init__(self, negative_slope: float = 0.0):
        super().__init__()
        self.negative_slope = float(negative_slope)

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        return cls(sub_param(layer, "relu_param").negative_slope)

    def forward(self, x):
        if self.negative_slope == 0:
            return torch.relu(x)
        return torch.where(x > 0, x, x * self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope:g}" if self.negative_slope else ""


class PReLU(_SameShape):
    BLOBS = ("weight",)

    def __init__(self, channels: int, channel_shared: bool = False):
        super().__init__()
        self.channel_shared = channel_shared
        self.weight = nn.Parameter(torch.full((1 if channel_shared else channels,), 0.25))

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        return cls(channel_count(bottom_shapes[0], "PReLU"),
                   sub_param(layer, "prelu_param").channel_shared)

    def forward(self, x):
        a = self.weight.reshape((1, -1) + (1,) * (x.dim() - 2))
        return torch.where(x > 0, x, x * a)


class Sigmoid(_SameShape):
    def forward(self, x):
        return torch.sigmoid(x)


class TanH(_SameShape):
    def forward(self, x):
        return torch.tanh(x)


class Power(_SameShape):
    def __init__(self, power=1.0, scale=1.0, shift=0.0):
        super().__init__()
        self.power, self.scale, self.shift = float(power), float(scale), float(shift)

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        p = sub_param(layer, "power_param")
        return cls(p.power, p.scale, p.shift)

    def forward(self, x):
        if self.power * self.scale == 0:
            value = 1.0 if self.power == 0 else self.shift ** self.power
            return torch.full_like(x, value)
        y = x
        if self.scale != 1:
            y = y * self.scale
        if self.shift != 0:
            y = y + self.shift
        if self.power != 1:
            y = torch.pow(y, self.power)
        return y

    def extra_repr(self):
        return f"power={self.power:g}, scale={self.scale:g}, shift={self.shift:g}"


class Dropout(_SameShape):
    def __init__(self, ratio: float = 0.5):
        super().__init__()
        self.ratio = float(ratio)

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        return cls(sub_param(layer, "dropout_param").dropout_ratio)

    def forward(self, x):
        return x

    def extra_repr(self):
        return f"ratio={self.ratio:g} (identity at test)"
