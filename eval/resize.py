"""Bilinear resizing as MATLAB's ``imresize(A, [rows cols], 'bilinear')`` computes it.

The authors' evaluation resizes twice with it: the uint8 image to each test scale, and the
float probability map back to the original size. MATLAB resizes one axis at a time.

Per axis (input length n, output length m, ``scale = m / n``, 1-based coordinates):

- output pixel x maps to ``u = x / scale + 0.5 * (1 - 1/scale)`` (pixel centres aligned);
- kernel = triangle ``h(t) = max(0, 1 - |t|)`` of width 2; when shrinking (scale < 1) it is
  widened to anti-alias: ``h_s(t) = scale * h(scale * t)``, width ``2 / scale``;
- taps ``j = floor(u - width/2) + k`` for ``k = 0 .. ceil(width) + 1``; weights
  ``h_s(u - j)``, divided by their sum (so they sum to 1 for each output pixel);
- taps outside 1..n are mirrored (symmetric: ... 2 1 | 1 2 ... n | n n-1 ...).

The axis with the smaller scale is resized first (rows first on a tie). Each pass sums in
double precision and stores in the input's class: uint8 is rounded half away from zero and
saturated after *each* pass; single stays single. An axis whose weights reduce to one tap of
weight 1 (same length) is a plain copy.

``method="opencv"`` uses ``cv2.resize(..., INTER_LINEAR)`` instead (no anti-aliasing,
OpenCV's own fixed-point rounding for uint8).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

METHODS = ("matlab", "opencv")


def contributions(n_in: int, n_out: int, scale: float | None = None,
                  antialias: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Weights (n_out, P) float64 and 0-based source indices (n_out, P) of one axis."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"resize: sizes must be positive, got {n_in} -> {n_out}")
    if scale is None:
        scale = n_out / n_in
    width = 2.0
    shrink = scale < 1 and antialias
    if shrink:
        width = width / scale
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    j = left[:, None] + np.arange(taps)[None, :]
    t = u[:, None] - j
    if shrink:
        w = scale * _triangle(scale * t)
    else:
        w = _triangle(t)
    w = w / w.sum(axis=1, keepdims=True)
    # mirror indices outside 1..n_in: aux = [1..n, n..1], index (j-1) mod 2n
    aux = np.concatenate([np.arange(n_in), np.arange(n_in - 1, -1, -1)])
    idx = aux[np.mod(j.astype(np.int64) - 1, 2 * n_in)]
    keep = np.any(w != 0, axis=0)
    return w[:, keep], idx[:, keep]


def _triangle(t: np.ndarray) -> np.ndarray:
    """MATLAB's triangle kernel: (t+1) on [-1, 0), (1-t) on [0, 1], else 0."""
    return ((t + 1) * ((-1 <= t) & (t < 0))) + ((1 - t) * ((0 <= t) & (t <= 1)))


def _resize_axis(x: torch.Tensor, dim: int, n_out: int, scale: float) -> torch.Tensor:
    """One MATLAB pass along `dim` (-2: rows, -1: cols) of (..., H, W): taps summed in order in
    float64, stored back in x's dtype (uint8: rounded half away from zero, saturated)."""
    return _apply_taps(x, dim, *contributions(x.shape[dim], n_out, scale))


def _apply_taps(x: torch.Tensor, dim: int, w: np.ndarray, idx: np.ndarray) -> torch.Tensor:
    """The pass itself, given one axis's weights and 0-based source indices (n_out, P): output
    i = sum over k of w[i, k] * x[idx[i, k]], each output computed on its own (so any subset of
    rows of `contributions` gives exactly those rows of the whole pass)."""
    index = torch.from_numpy(idx).to(x.device)
    if w.shape[1] == 1 and np.all(w == 1):
        return x.index_select(dim, index[:, 0])
    # the axis is moved to the front, so that gathering a tap copies whole contiguous slices
    xt = x.movedim(dim, 0)
    shape = (w.shape[0],) + (1,) * (x.dim() - 1)
    weights = torch.from_numpy(w).to(x.device)
    # widening is exact, so it may come before or after the gathering: enlarging, the (smaller)
    # input is widened once; shrinking, each tap is gathered in x's own dtype and widened (no
    # float64 copy of a whole big input: a 10000 x 10000 image is 800 MB a channel)
    src = xt.to(torch.float64) if x.shape[dim] < w.shape[0] else xt
    src = src.contiguous()
    acc = src.index_select(0, index[:, 0]).to(torch.float64).mul_(weights[:, 0].reshape(shape))
    for k in range(1, w.shape[1]):
        # product rounded, then added (no fused multiply-add), tap by tap as MATLAB's loop
        acc.add_(src.index_select(0, index[:, k]).to(torch.float64)
                 .mul_(weights[:, k].reshape(shape)))
    if x.dtype == torch.uint8:  # weights and pixels are >= 0: half away = floor(v + 0.5)
        acc = acc.add_(0.5).floor_().clamp_(0, 255).to(torch.uint8)
    else:
        acc = acc.to(x.dtype)
    return acc.movedim(0, dim)       # a view: the next pass or the caller lays it out


def _resize_planes(planes: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """Both passes on (..., H, W), the axis with the smaller scale first (rows on a tie)."""
    scales = {-2: rows / planes.shape[-2], -1: cols / planes.shape[-1]}
    order = (-2, -1) if scales[-2] <= scales[-1] else (-1, -2)
    for d in order:
        planes = _resize_axis(planes, d, rows if d == -2 else cols, scales[d])
    return planes


_CHUNK_ELEMENTS = 1 << 23  # float64 working set per group of channels (~64 MB)


def imresize(a, size: tuple[int, int], method: str = "matlab", channels_first: bool = False):
    """Resize `a` to size = (rows, cols) like MATLAB's imresize(a, size, 'bilinear').

    a: numpy array or torch tensor, (H, W), (H, W, C), or (C, H, W) with channels_first;
    uint8 or float32. Returns the same kind, dtype and layout. Channels are resized in groups
    so that memory stays bounded (19 x 1793 x 3585 score maps included).
    """
    if method not in METHODS:
        raise ValueError(f"resize method must be one of {METHODS}, got {method!r}")
    rows, cols = int(size[0]), int(size[1])
    is_numpy = isinstance(a, np.ndarray)
    t = torch.from_numpy(np.ascontiguousarray(a)) if is_numpy else a
    if method == "opencv":
        out = _opencv(t, rows, cols, channels_first)
    elif t.dim() == 2:
        out = _resize_planes(t, rows, cols).contiguous()
    else:
        chw = t if channels_first else t.permute(2, 0, 1)
        biggest = max(chw.shape[1], rows) * max(chw.shape[2], cols)
        group = max(1, _CHUNK_ELEMENTS // biggest)
        out = torch.cat([_resize_planes(c, rows, cols) for c in chw.split(group)])
        out = out if channels_first else out.permute(1, 2, 0).contiguous()
    return out.numpy() if is_numpy else out


def _opencv(t: torch.Tensor, rows: int, cols: int, channels_first: bool) -> torch.Tensor:
    a = t.detach().cpu().numpy()
    if channels_first and a.ndim == 3:
        a = a.transpose(1, 2, 0)
    chans = a.shape[2] if a.ndim == 3 else 0
    if chans > 4:  # cv2.resize handles at most 512 channels; split to stay generic
        out = np.stack([cv2.resize(np.ascontiguousarray(a[..., c]), (cols, rows),
                                   interpolation=cv2.INTER_LINEAR) for c in range(chans)], -1)
    else:
        out = cv2.resize(np.ascontiguousarray(a), (cols, rows), interpolation=cv2.INTER_LINEAR)
        if a.ndim == 3 and out.ndim == 2:
            out = out[..., None]
    if channels_first and out.ndim == 3:
        out = out.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(out)).to(t.device)


class RowsOfResize:
    """Rows r0:r1 of ``imresize(a, size, channels_first=True)`` (method "matlab") of a
    (C, H, W) float tensor, computed from only the input rows those output rows read.

    Each MATLAB pass computes every output on its own from its taps, so rows taken from the
    whole axis's `contributions` (taps and weights as the whole resize has them, zero-weight
    taps included: they carry NaN) give the same numbers, bit for bit, as the same rows of the
    whole resize. Memory follows the strip: (C, r1 - r0, cols) plus the input rows it reads.
    """

    def __init__(self, in_rows: int, in_cols: int, size: tuple[int, int]):
        self.rows, self.cols = int(size[0]), int(size[1])
        self.in_rows, self.in_cols = in_rows, in_cols
        row_scale, col_scale = self.rows / in_rows, self.cols / in_cols
        self.rows_first = row_scale <= col_scale        # _resize_planes' order
        self.row_w, self.row_idx = contributions(in_rows, self.rows, row_scale)
        self.col_w, self.col_idx = contributions(in_cols, self.cols, col_scale)

    def source_rows(self, r0: int, r1: int) -> tuple[int, int]:
        """[lo, hi): the input rows that output rows r0:r1 read."""
        idx = self.row_idx[r0:r1]
        return int(idx.min()), int(idx.max()) + 1

    def __call__(self, a: torch.Tensor, r0: int, r1: int) -> torch.Tensor:
        """(C, r1 - r0, cols) in a's dtype; a is the whole (C, in_rows, in_cols) input."""
        if tuple(a.shape[1:]) != (self.in_rows, self.in_cols):
            raise ValueError(f"resize: expected (C, {self.in_rows}, {self.in_cols}), got "
                             f"{tuple(a.shape)}")
        lo, hi = self.source_rows(r0, r1)
        row_w, row_idx = self.row_w[r0:r1], self.row_idx[r0:r1] - lo
        biggest = max(hi - lo, r1 - r0) * max(self.in_cols, self.cols)
        group = max(1, _CHUNK_ELEMENTS // biggest)
        out = torch.empty((a.shape[0], r1 - r0, self.cols), dtype=a.dtype, device=a.device)
        for c0 in range(0, a.shape[0], group):
            chunk = a[c0:c0 + group, lo:hi]
            if self.rows_first:
                chunk = _apply_taps(chunk, -2, row_w, row_idx)
                chunk = _apply_taps(chunk, -1, self.col_w, self.col_idx)
            else:
                chunk = _apply_taps(chunk, -1, self.col_w, self.col_idx)
                chunk = _apply_taps(chunk, -2, row_w, row_idx)
            out[c0:c0 + group] = chunk
        return out
