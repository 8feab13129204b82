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

Every size here is a Python int or a torch SymInt (the input's symbolic size
under torch.export / torch.compile / the ONNX exporter): the arithmetic is
integer arithmetic and torch ops, never numpy, so one traced graph serves every
input size (see `ceil_div` and `pool_output_size` for why the integer forms are
Caffe's float forms exactly).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import CaffeLayer, has, sub_param
from .sizes import FLOAT32_EXACT, ceil_div, known_true, memo_for_ints, require, size as _size


def _pair(v):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"expected an (h, w) pair, got {v!r}")
        return _size(v[0]), _size(v[1])
    return _size(v), _size(v)


def pool_output_size(size, kernel, stride, pad, *, clip=None, ceil_mode=True):
    """Caffe's pooled length of one axis (an int, or a SymInt for a symbolic `size`).

    ``clip`` says whether the layer has padding on any axis (Caffe applies the
    last-window rule to both axes when either pad is non-zero); None means
    ``pad > 0``, right for square padding.

    Caffe divides in float32: ``ceil(float(a) / float(s))`` with ``a = size + 2p - k``.
    Here it is the exact integer ``ceil_div(a, s)`` (floor: ``a // s``), the same
    value whenever ``|a| + s <= 2**24`` (required): both operands are then exact in
    float32, and if ``a / s`` is not an integer it lies at least ``1/s`` from the
    integers around it, farther than the half ulp of float32 there
    (``(|q| + 1) * 2**-24 < (|a| + s) / s * 2**-24 <= 1/s``, ``q`` its integer part),
    so the rounded quotient stays strictly between the same two integers and its
    ceil (floor) is the exact one; an integer quotient is exact.

    Caffe's last-window rule (``if (out - 1) * s >= size + p: out -= 1``) is
    ``min(out, ceil_div(size + p, s))``: the rule removes exactly the windows that
    start at or past ``size + p``, and since ``p < k`` at most the one it checks. It
    can only fire when ``s > k - p`` (ceil: ``(out - 1) * s < size + 2p - k + s``),
    so other layers (the PSPNet stem, 3/2/1) keep a plain expression.
    """
    if kernel <= 0 or stride <= 0:
        raise ValueError(f"pooling kernel {kernel} and stride {stride} must be positive")
    if not 0 <= pad < kernel:
        raise ValueError(f"pooling pad {pad} must be in [0, kernel {kernel})")
    span = size + 2 * pad - kernel
    require(size + 2 * pad + kernel + stride <= FLOAT32_EXACT,
            lambda: f"pooling size {size} (kernel {kernel}, stride {stride}, pad {pad}) is "
                    f"past 2**24, where Caffe's float32 size arithmetic is not exact")
    out = (ceil_div(span, stride) if ceil_mode else span // stride) + 1
    # out > 0, written on span: the `//` above then has a non-negative numerator
    require(span > -stride if ceil_mode else span >= 0,
            lambda: f"pooling kernel {kernel} stride {stride} pad {pad} on size {size} "
                    f"gives {out} outputs")
    if (pad > 0 if clip is None else clip) and stride > kernel - pad:
        out = torch.sym_min(out, ceil_div(size + pad, stride))
    return out


def pool2d_output_size(hw, kernel, stride, pad, ceil_mode=True):
    """(h_out, w_out) for (h, w) with kernel/stride/pad as (h, w) pairs."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
    clip = ph != 0 or pw != 0
    return (pool_output_size(hw[0], kh, sh, ph, clip=clip, ceil_mode=ceil_mode),
            pool_output_size(hw[1], kw, sw, pw, clip=clip, ceil_mode=ceil_mode))


def _ave_divisor(n_out, size, kernel, stride, pad, device):
    """Caffe's per-window AVE divisor along one axis (padding counts, overhang not), int64."""
    start = torch.arange(n_out, device=device) * stride - pad
    return (start + kernel).clamp(max=size + pad) - start


@memo_for_ints
def _ave_divisors(hw_out, hw, kernel, stride, pad, device, dtype):
    """The (h_out, w_out) AVE divisors in `dtype` (exact: at most kh * kw)."""
    return (_ave_divisor(hw_out[0], hw[0], kernel[0], stride[0], pad[0], device)[:, None]
            * _ave_divisor(hw_out[1], hw[1], kernel[1], stride[1], pad[1], device)[None, :]
            ).to(dtype)


def pool2d(x: torch.Tensor, method: str, kernel, stride, pad, ceil_mode=True) -> torch.Tensor:
    """Caffe pooling of an (N, C, H, W) blob; method "max" or "ave" (any symbolic size)."""
    if x.dim() != 4:
        raise ValueError(f"Pooling expects a 4-D (N, C, H, W) blob, got {tuple(x.shape)}")
    if method not in ("max", "ave"):
        raise ValueError(f"pooling method must be 'max' or 'ave', got {method!r}")
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(pad)
    H, W = x.shape[-2:]
    ho, wo = pool2d_output_size((H, W), (kh, kw), (sh, sw), (ph, pw), ceil_mode)
    # Pad (or crop, a negative pad) the end so that the blob holds exactly the
    # windows [o*s - p, o*s - p + k), o < out, then pool without padding.
    pads = (pw, (wo - 1) * sw + kw - pw - W, ph, (ho - 1) * sh + kh - ph - H)
    padded = not all(known_true(p == 0) for p in pads)
    if method == "max":
        if padded:
            x = F.pad(x, pads, value=float("-inf"))
        y = F.max_pool2d(x, (kh, kw), (sh, sw))
        return y.clamp(min=torch.finfo(y.dtype).min)   # Caffe starts from -FLT_MAX
    if padded:
        x = F.pad(x, pads, value=0.0)
    total = F.avg_pool2d(x, (kh, kw), (sh, sw), divisor_override=1)
    return total / _ave_divisors((ho, wo), (H, W), (kh, kw), (sh, sw), (ph, pw), x.device,
                                 total.dtype)


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
        return (_size(shape[2]), _size(shape[3])) if self.global_pooling else self.kernel

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
