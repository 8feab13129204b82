"""Pooling (upstream Caffe rules, as built in the PSPNet fork): MAX and AVE, ceil mode.

Caffe arithmetic (``PoolingLayer::Reshape`` / ``Forward_cpu``), per axis:

- ``out = int(ceil(float(H + 2p - k) / s)) + 1``; only when the layer has any
  padding (``pad_h`` or ``pad_w`` non-zero, the check then runs on both axes):
  if ``(out - 1) * s >= H + p`` then ``out -= 1`` (the last window must start
  inside the image or the leading padding);
- window ``hstart = ph * s - p``;
- MAX: the maximum over ``[max(hstart, 0), min(hstart + k, H))``, padding
  ignored, starting from ``-FLT_MAX`` (an empty window gives ``-FLT_MAX``);
- AVE: the sum over the same clipped window divided by
  ``(min(hstart + k, H + p) - hstart) * (same for w)``, computed before the
  clipping: leading padding counts, the overhang past ``H + p`` does not;
- ``global_pooling``: kernel = input size, pad 0, stride 1;
- later upstream Caffe's ``round_mode: FLOOR`` uses floor instead of ceil
  (the padding rule unchanged); the fork only knows ceil.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .base import CaffeLayer, has, sub_param


def _pair(v):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"expected an (h, w) pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def pool_output_size(size, kernel, stride, pad, *, clip=None, ceil_mode=True) -> int:
    """Caffe's pooled length of one axis.

    ``clip`` says whether the layer has padding on any axis (Caffe applies the
    last-window rule to both axes when either pad is non-zero); None means
    ``pad > 0``, right for square padding.
    """
    if kernel <= 0 or stride <= 0:
        raise ValueError(f"pooling kernel {kernel} and stride {stride} must be positive")
    ratio = np.float32(size + 2 * pad - kernel) / np.float32(stride)   # Caffe: float division
    out = int(math.ceil(ratio) if ceil_mode else math.floor(ratio)) + 1
    if (pad > 0 if clip is None else clip) and (out - 1) * stride >= size + pad:
        out -= 1
    if out <= 0:
        raise ValueError(f"pooling kernel {kernel} stride {stride} pad {pad} on size {size} "
                         f"gives {out} outputs")
    return out


def pool2d_output_size(hw, kernel, stride, pad, ceil_mode=True):
    """(h_out, w_out) for (h, w) with kernel/stride/pad as (h, w) pairs."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
    clip = ph != 0 or pw != 0
    return (pool_output_size(hw[0], kh, sh, ph, clip=clip, ceil_mode=ceil_mode),
            pool_output_size(hw[1], kw, sw, pw, clip=clip, ceil_mode=ceil_mode))


def _ave_divisor(n_out, size, kernel, stride, pad):
    """Caffe's per-window AVE divisor along one axis (padding counts, overhang not)."""
    start = np.arange(n_out, dtype=np.int64) * stride - pad
    return np.minimum(start + kernel, size + pad) - start


def pool2d(x: torch.Tensor, method: str, kernel, stride, pad, ceil_mode=True) -> torch.Tensor:
    """Caffe pooling of an (N, C, H, W) blob; method "max" or "ave"."""
    if x.dim() != 4:
        raise ValueError(f"Pooling expects a 4-D (N, C, H, W) blob, got {tuple(x.shape)}")
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
    H, W = x.shape[-2:]
    ho, wo = pool2d_output_size((H, W), (kh, kw), (sh, sw), (ph, pw), ceil_mode)
    # Pad so that every window [o*s - p, o*s - p + k) lies inside the padded blob,
    # then pool without padding; windows past the needed count are cut off.
    right = max(0, (wo - 1) * sw + kw - pw - W)
    bottom = max(0, (ho - 1) * sh + kh - ph - H)
    if method == "max":
        if ph or pw or right or bottom:
            x = F.pad(x, (pw, right, ph, bottom), value=float("-inf"))
        y = F.max_pool2d(x, (kh, kw), (sh, sw))[:, :, :ho, :wo]
        return y.clamp(min=torch.finfo(y.dtype).min)   # Caffe starts from -FLT_MAX
    if method == "ave":
        if ph or pw or right or bottom:
            x = F.pad(x, (pw, right, ph, bottom), value=0.0)
        total = F.avg_pool2d(x, (kh, kw), (sh, sw), divisor_override=1)[:, :, :ho, :wo]
        div = np.outer(_ave_divisor(ho, H, kh, sh, ph), _ave_divisor(wo, W, kw, sw, pw))
        return total / torch.from_numpy(div.astype(np.float32)).to(total.device, total.dtype)
    raise ValueError(f"pooling method must be 'max' or 'ave', got {method!r}")


class Pooling(CaffeLayer):
    """The Pooling layer; ``global_pooling`` takes the kernel from each input."""

    def __init__(self, method, kernel=None, stride=1, pad=0, global_pooling=False,
                 ceil_mode=True):
        super().__init__()
        self.ceil_mode = ceil_mode
        if method not in ("max", "ave"):
            raise ValueError(f"pooling method must be 'max' or 'ave', got {method!r}")
        self.method, self.global_pooling = method, global_pooling
        self.kernel = None if global_pooling else _pair(kernel)
        self.stride, self.pad = _pair(stride), _pair(pad)
        if global_pooling and (self.stride != (1, 1) or self.pad != (0, 0)):
            raise ValueError("global_pooling needs pad 0 and stride 1")
        if not global_pooling and (self.pad[0] >= self.kernel[0] or self.pad[1] >= self.kernel[1]):
            raise ValueError(f"pooling pad {self.pad} must be smaller than kernel {self.kernel}")

    @classmethod
    def from_param(cls, p):
        """From a PoolingParameter message (Caffe's kernel/stride/pad precedence)."""
        methods = {0: "max", 1: "ave"}
        if p.pool not in methods:
            raise ValueError("only MAX and AVE pooling are supported (STOCHASTIC is not)")
        if p.global_pooling:
            if has(p, "kernel_size") or has(p, "kernel_h") or has(p, "kernel_w"):
                raise ValueError("global_pooling with a kernel size set")
            kernel = None
        elif has(p, "kernel_h") and has(p, "kernel_w") and not has(p, "kernel_size"):
            kernel = (p.kernel_h, p.kernel_w)
        elif has(p, "kernel_size") and not (has(p, "kernel_h") or has(p, "kernel_w")):
            kernel = p.kernel_size
        else:
            raise ValueError("pooling kernel is kernel_size OR (kernel_h and kernel_w)")
        if has(p, "pad_h") != has(p, "pad_w") or (has(p, "pad_h") and has(p, "pad")):
            raise ValueError("pooling pad is pad OR (pad_h and pad_w)")
        if has(p, "stride_h") != has(p, "stride_w") or (
                has(p, "stride_h") and has(p, "stride")):
            raise ValueError("pooling stride is stride OR (stride_h and stride_w)")
        pad = (p.pad_h, p.pad_w) if has(p, "pad_h") else p.pad
        stride = (p.stride_h, p.stride_w) if has(p, "stride_h") else p.stride
        ceil_mode = not (has(p, "round_mode") and p.round_mode == 1)    # 1 = FLOOR
        return cls(methods[p.pool], kernel, stride, pad, bool(p.global_pooling), ceil_mode)

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        return cls.from_param(sub_param(layer, "pooling_param"))

    def _kernel(self, shape):
        return (int(shape[2]), int(shape[3])) if self.global_pooling else self.kernel

    def output_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) != 4:
            raise ValueError(f"Pooling expects a 4-D (N, C, H, W) blob, got {tuple(shape)}")
        return [(*shape[:2], *pool2d_output_size(shape[2:], self._kernel(shape),
                                                 self.stride, self.pad, self.ceil_mode))]

    def forward(self, x):
        return pool2d(x, self.method, self._kernel(x.shape), self.stride, self.pad,
                      self.ceil_mode)

    def extra_repr(self):
        k = "global" if self.global_pooling else self.kernel
        return f"{self.method}, kernel={k}, stride={self.stride}, pad={self.pad}"
