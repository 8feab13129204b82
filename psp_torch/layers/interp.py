"""Interp (PSPNet fork, from DeepLab): corner-aligned bilinear resize with cropping pads.

Caffe arithmetic (``InterpLayer::Reshape`` and ``caffe_cpu_interp2``):

- effective input ``H_eff = H + pad_beg + pad_end`` (pads <= 0: a crop taken
  from offset ``-pad_beg`` in both axes);
- output size, first rule that applies: shrink only ``(H_eff - 1) / s + 1``;
  zoom only ``H_eff + (H_eff - 1) * (z - 1)``; ``height`` and ``width``;
  shrink and zoom (shrink first, then zoom);
- same size: a plain copy; else ``rheight = float(H_eff - 1) / (H_out - 1)``
  (0 when ``H_out == 1``), for each output row ``h1r = rheight * h2`` in float,
  ``h1 = int(h1r)``, neighbour ``h1 + (h1 < H_eff - 1)``, ``l1 = h1r - h1``,
  ``l0 = 1 - l1`` (float32), and likewise for columns;
  ``out = l0h * (l0w * a + l1w * b) + l1h * (l0w * c + l1w * d)``.

The sizes may be symbolic (torch SymInts under torch.export / torch.compile / the
ONNX exporter): the ratio, source rows, neighbours and lambdas are torch ops on
the input's size, so one traced graph serves every input size with Caffe's
float32 operations (see `psp_torch.layers.sizes`).
"""
from __future__ import annotations

import torch

from .base import CaffeLayer, has, sub_param
from .sizes import FLOAT32_EXACT, known_true, memo_for_ints, require, size as _size


def interp_output_size(h, w, *, height=None, width=None, zoom_factor=None,
                       shrink_factor=None, pad_beg=0, pad_end=0):
    """(h_out, w_out) of Caffe's Interp for an (h, w) input; None = field absent."""
    if pad_beg > 0 or pad_end > 0:
        raise ValueError(f"Interp pads must be <= 0 (crops), got pad_beg={pad_beg} "
                         f"pad_end={pad_end}")
    h_eff, w_eff = h + pad_beg + pad_end, w + pad_beg + pad_end
    for n in (h_eff, w_eff):
        require(n > 0, lambda: f"Interp input {h}x{w} with pads ({pad_beg}, {pad_end}) "
                               f"leaves {h_eff}x{w_eff}")
    for label, f in (("shrink_factor", shrink_factor), ("zoom_factor", zoom_factor)):
        if f is not None and f < 1:
            raise ValueError(f"Interp {label} must be >= 1, got {f}")
    if shrink_factor is not None and zoom_factor is None:
        out = ((h_eff - 1) // shrink_factor + 1, (w_eff - 1) // shrink_factor + 1)
    elif zoom_factor is not None and shrink_factor is None:
        out = (h_eff + (h_eff - 1) * (zoom_factor - 1), w_eff + (w_eff - 1) * (zoom_factor - 1))
    elif height is not None and width is not None:
        out = (height, width)
    elif shrink_factor is not None and zoom_factor is not None:
        hs, ws = (h_eff - 1) // shrink_factor + 1, (w_eff - 1) // shrink_factor + 1
        out = (hs + (hs - 1) * (zoom_factor - 1), ws + (ws - 1) * (zoom_factor - 1))
    else:
        raise ValueError("Interp needs zoom_factor, shrink_factor, or both height and width")
    for n in out:
        require(n > 0, lambda: f"Interp output size {out[0]}x{out[1]} is not positive")
    return _size(out[0]), _size(out[1])


@memo_for_ints
def _axis_weights(n_in, n_out, device, dtype):
    """Caffe's per-axis source index, neighbour and float32 lambdas (sizes may be SymInts);
    the lambdas then in `dtype` (exact: float32 values).

    ``ratio = float(n_in - 1) / float(n_out - 1)``, 0 for one output: here the
    denominator is clamped to 1, which gives the same source coordinates
    (``ratio * 0 = 0``). Sizes below 2**24 are exact in float32 (required), so the
    products and the division are Caffe's float32 operations.
    """
    one = torch.ones((), dtype=torch.float32, device=device)
    ratio = (one * (n_in - 1)) / (one * (n_out - 1)).clamp(min=1.0)
    src = ratio * torch.arange(n_out, dtype=torch.float32, device=device)  # float32 products
    i0 = src.to(torch.int64)                                              # truncation, src >= 0
    i1 = i0 + (i0 < n_in - 1).to(torch.int64)
    l1 = src - i0.to(torch.float32)
    return i0, i1, (1.0 - l1).to(dtype), l1.to(dtype)


def interp(x: torch.Tensor, size, pad_beg: int = 0, pad_end: int = 0) -> torch.Tensor:
    """Caffe's Interp forward: (N, C, H, W) -> (N, C, *size), corner-aligned bilinear.

    Negative pads crop ``-pad_beg`` rows/columns at the start and ``-pad_end`` at
    the end before resizing. The arithmetic is Caffe's, operation for operation.
    Equal sizes are Caffe's plain copy; where a traced graph cannot know the sizes
    equal it takes the general path, whose weights are then exactly 1 and 0 (the
    same values for finite inputs).
    """
    if pad_beg > 0 or pad_end > 0:
        raise ValueError(f"Interp pads must be <= 0 (crops), got {pad_beg}, {pad_end}")
    if x.dim() != 4:
        raise ValueError(f"Interp expects a 4-D (N, C, H, W) blob, got shape {tuple(x.shape)}")
    h_out, w_out = _size(size[0]), _size(size[1])
    H, W = x.shape[-2:]
    h_in, w_in = H + pad_beg + pad_end, W + pad_beg + pad_end
    for n in (h_in, w_in, h_out, w_out):
        require(n > 0, lambda: f"Interp {H}x{W} (pads {pad_beg}, {pad_end}) -> "
                               f"{h_out}x{w_out} is empty")
        require(n < FLOAT32_EXACT, lambda: f"Interp size {n} is past 2**24, where Caffe's "
                                           f"float32 coordinates are not exact")
    off = -pad_beg
    x = x[:, :, off:off + h_in, off:off + w_in]
    if known_true(h_in == h_out) and known_true(w_in == w_out):
        return x.clone()
    h0, h1, lh0, lh1 = _axis_weights(h_in, h_out, x.device, x.dtype)
    w0, w1, lw0, lw1 = _axis_weights(w_in, w_out, x.device, x.dtype)
    lh0, lh1, lw0, lw1 = lh0[:, None], lh1[:, None], lw0[None, :], lw1[None, :]
    # Caffe's l0h * (l0w * a + l1w * b) + l1h * (l0w * c + l1w * d), done as two
    # passes with the same float operations: the bracket of every input row first
    # (only the rows the output needs are ever read), then the blend of two rows.
    # (advanced indexing: index_select along H is many times slower on CPU)
    # In-place products on the freshly gathered tensors save allocations only.
    cols = x[..., w0].mul_(lw0)
    cols.add_(x[..., w1].mul_(lw1))
    out = cols[:, :, h0].mul_(lh0)
    return out.add_(cols[:, :, h1].mul_(lh1))


def _field(p, name):
    return getattr(p, name) if has(p, name) else None


class Interp(CaffeLayer):
    """The Interp layer; a fixed ``height``/``width`` stays fixed for any input size."""

    def __init__(self, *, height=None, width=None, zoom_factor=None, shrink_factor=None,
                 pad_beg=0, pad_end=0):
        super().__init__()
        self.height, self.width = height, width
        self.zoom_factor, self.shrink_factor = zoom_factor, shrink_factor
        self.pad_beg, self.pad_end = pad_beg, pad_end
        if pad_beg > 0 or pad_end > 0:
            raise ValueError(f"Interp pads must be <= 0 (crops), got {pad_beg}, {pad_end}")

    @classmethod
    def from_param(cls, p):
        """From an InterpParameter message (proto2 presence decides the rule)."""
        return cls(height=_field(p, "height"), width=_field(p, "width"),
                   zoom_factor=_field(p, "zoom_factor"),
                   shrink_factor=_field(p, "shrink_factor"),
                   pad_beg=p.pad_beg, pad_end=p.pad_end)

    @classmethod
    def from_layer(cls, layer, bottom_shapes):
        return cls.from_param(sub_param(layer, "interp_param"))

    def output_size(self, h, w):
        return interp_output_size(h, w, height=self.height, width=self.width,
                                  zoom_factor=self.zoom_factor,
                                  shrink_factor=self.shrink_factor,
                                  pad_beg=self.pad_beg, pad_end=self.pad_end)

    def output_shapes(self, bottom_shapes):
        shape = bottom_shapes[0]
        if len(shape) != 4:
            raise ValueError(f"Interp expects a 4-D (N, C, H, W) blob, got {tuple(shape)}")
        return [(*shape[:2], *self.output_size(shape[2], shape[3]))]

    def forward(self, x):
        return interp(x, self.output_size(x.shape[2], x.shape[3]), self.pad_beg, self.pad_end)

    def extra_repr(self):
        keys = ("height", "width", "zoom_factor", "shrink_factor", "pad_beg", "pad_end")
        return ", ".join(f"{k}={getattr(self, k)}" for k in keys if getattr(self, k))
