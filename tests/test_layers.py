"""Caffe arithmetic edge cases of Interp, Pooling and the convolution sizes.

The references below are literal ports of Caffe's C++ loops
(``caffe_cpu_interp2`` of the PSPNet fork, ``PoolingLayer::Reshape`` and
``Forward_cpu``) in float32 numpy, one scalar at a time, written independently
of the vectorised implementation they check. Interp and MAX pooling must match
them exactly (same float32 operations in the same order); AVE pooling sums a
window in another order, so it is held to 1e-6 of the input's scale (a window
here has at most 36 terms: float32 rounding of such sums stays below 1e-6,
while a wrong divisor is off by 10% or more).
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from psp_torch.layers.conv import conv_output_size, deconv_output_size
from psp_torch.layers.interp import interp, interp_output_size
from psp_torch.layers.pooling import pool2d, pool2d_output_size, pool_output_size

FLT_MAX = np.float32(np.finfo(np.float32).max)
AVE_BOUND = 1e-6   # relative to max |input|; summation order only (see the docstring)


# ---------------------------------------------------------------- literal references

def caffe_pool_reference(x, method, kh, kw, sh, sw, ph, pw):
    """PoolingLayer<float>::Reshape + Forward_cpu, one (H, W) plane per channel."""
    C, H, W = x.shape
    oh = int(math.ceil(float(np.float32(H + 2 * ph - kh) / np.float32(sh)))) + 1
    ow = int(math.ceil(float(np.float32(W + 2 * pw - kw) / np.float32(sw)))) + 1
    if ph or pw:
        if (oh - 1) * sh >= H + ph:
            oh -= 1
        if (ow - 1) * sw >= W + pw:
            ow -= 1
    top = np.zeros((C, oh, ow), np.float32)
    for c in range(C):
        for i in range(oh):
            for j in range(ow):
                hstart, wstart = i * sh - ph, j * sw - pw
                if method == "max":
                    hend, wend = min(hstart + kh, H), min(wstart + kw, W)
                    hstart, wstart = max(hstart, 0), max(wstart, 0)
                    v = -FLT_MAX
                    for h in range(hstart, hend):
                        for w in range(wstart, wend):
                            if x[c, h, w] > v:
                                v = x[c, h, w]
                else:
                    hend, wend = min(hstart + kh, H + ph), min(wstart + kw, W + pw)
                    pool_size = (hend - hstart) * (wend - wstart)
                    hstart, wstart = max(hstart, 0), max(wstart, 0)
                    hend, wend = min(hend, H), min(wend, W)
                    v = np.float32(0)
                    for h in range(hstart, hend):
                        for w in range(wstart, wend):
                            v = np.float32(v + x[c, h, w])
                    with np.errstate(invalid="ignore", divide="ignore"):
                        v = np.float32(v / np.float32(pool_size))
                top[c, i, j] = v
    return top


def caffe_interp_reference(x, h2n, w2n, pad_beg=0, pad_end=0):
    """caffe_cpu_interp2<float, false> as InterpLayer::Forward_cpu calls it."""
    C, Hin, Win = x.shape
    h1n, w1n = Hin + pad_beg + pad_end, Win + pad_beg + pad_end
    y1 = x1 = -pad_beg
    out = np.zeros((C, h2n, w2n), np.float32)
    if (h1n, w1n) == (h2n, w2n):
        return x[:, y1:y1 + h1n, x1:x1 + w1n].copy()
    f32 = np.float32
    rh = f32(f32(h1n - 1) / f32(h2n - 1)) if h2n > 1 else f32(0)
    rw = f32(f32(w1n - 1) / f32(w2n - 1)) if w2n > 1 else f32(0)
    for i in range(h2n):
        h1r = f32(rh * f32(i))
        h1 = int(h1r)
        h1p = 1 if h1 < h1n - 1 else 0
        l1h = f32(h1r - f32(h1))
        l0h = f32(f32(1) - l1h)
        for j in range(w2n):
            w1r = f32(rw * f32(j))
            w1 = int(w1r)
            w1p = 1 if w1 < w1n - 1 else 0
            l1w = f32(w1r - f32(w1))
            l0w = f32(f32(1) - l1w)
            for c in range(C):
                a = x[c, y1 + h1, x1 + w1]
                b = x[c, y1 + h1, x1 + w1 + w1p]
                cc = x[c, y1 + h1 + h1p, x1 + w1]
                d = x[c, y1 + h1 + h1p, x1 + w1 + w1p]
                out[c, i, j] = f32(f32(l0h * f32(f32(l0w * a) + f32(l1w * b)))
                                   + f32(l1h * f32(f32(l0w * cc) + f32(l1w * d))))
    return out


# ---------------------------------------------------------------- pooling

@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    sh, sw = draw(st.integers(1, 7)), draw(st.integers(1, 7))      # stride may exceed kernel
    H = draw(st.integers(max(1, kh - 2 * ph), 13))
    W = draw(st.integers(max(1, kw - 2 * pw), 13))
    method = draw(st.sampled_from(["max", "ave"]))
    seed = draw(st.integers(0, 2**31 - 1))
    return method, (kh, kw), (sh, sw), (ph, pw), (H, W), seed


@settings(max_examples=150, deadline=None)
@given(pool_cases())
def test_pool2d_matches_caffe_loops(case):
    method, (kh, kw), (sh, sw), (ph, pw), (H, W), seed = case
    x = np.random.RandomState(seed).randn(2, H, W).astype(np.float32) - 0.5
    expected = caffe_pool_reference(x, method, kh, kw, sh, sw, ph, pw)
    ours = pool2d(torch.from_numpy(x)[None], method, (kh, kw), (sh, sw), (ph, pw))[0].numpy()
    assert ours.shape == expected.shape
    assert pool2d_output_size((H, W), (kh, kw), (sh, sw), (ph, pw)) == expected.shape[1:]
    if method == "max":
        np.testing.assert_array_equal(ours, expected)
    else:
        np.testing.assert_allclose(ours, expected, rtol=0, atol=AVE_BOUND * np.abs(x).max(),
                                   equal_nan=True)


def test_pool_window_starting_in_padding_counts_padding_in_ave_divisor():
    # 1x1x3x3 of ones, k3 s2 p1 -> 2x2. Window 0 covers rows -1..1 (2 real rows),
    # window 1 rows 1..3 (2 real rows, row 3 is the padding at H + p - 1): every
    # window holds 4 real pixels and the divisor is always 3x3 = 9 (padding counts).
    x = torch.ones(1, 1, 3, 3)
    ave = pool2d(x, "ave", 3, 2, 1)[0, 0]
    np.testing.assert_allclose(ave.numpy(), np.full((2, 2), 4 / 9), rtol=1e-7)
    mx = pool2d(-x, "max", 3, 2, 1)[0, 0]            # padding never wins a MAX
    np.testing.assert_array_equal(mx.numpy(), -np.ones((2, 2), np.float32))


def test_pool_overhang_past_h_plus_p_is_not_counted():
    # 1x1x4x4 ones, k3 s2 p1: out = ceil((4+2-3)/2)+1 = 3; last window rows 3..5,
    # clipped to H + p = 5 before the divisor: (5-3) x (5-3) = 4 with 1 real pixel.
    ave = pool2d(torch.ones(1, 1, 4, 4), "ave", 3, 2, 1)[0, 0].numpy()
    assert ave.shape == (3, 3)
    assert ave[2, 2] == pytest.approx(1 / 4)
    assert ave[0, 0] == pytest.approx(4 / 9)


def test_pool_output_size_rules():
    # PSPNet stem pool k3 s2 p1 (oracle pool_max_ceil: 236/237/238 -> 119/119/120)
    assert [pool_output_size(n, 3, 2, 1) for n in (236, 237, 238)] == [119, 119, 120]
    # ceil, no padding: 61 k20 s20 -> 4 (last window 1 wide), 59 -> 3
    assert pool_output_size(61, 20, 20, 0) == 4 and pool_output_size(59, 20, 20, 0) == 3
    # padding rule: ceil((5+2-3)/3)+1 = 3 but window 2 would start at 6 >= H + p = 6
    assert pool_output_size(5, 3, 3, 1) == 2
    # ... which does not apply without padding: 7 k2 s4 keeps an empty last window
    assert pool_output_size(7, 2, 4, 0) == 3
    # ... and applies to both axes when either axis is padded (Caffe checks pad_h || pad_w)
    # (W: ceil((7-2)/4)+1 = 3, window 2 at 8 >= W + 0 = 7 -> 2 when pad_h is set)
    assert pool2d_output_size((5, 7), (3, 2), (3, 4), (1, 0)) == (2, 2)
    assert pool2d_output_size((5, 7), (3, 2), (3, 4), (0, 0)) == (2, 3)
    # FLOOR round mode (later upstream Caffe)
    assert pool_output_size(61, 20, 20, 0, ceil_mode=False) == 3


def test_pool_empty_last_window_without_padding():
    # stride 4 > kernel 2 on 7: the window at 8 lies outside the image; Caffe
    # leaves -FLT_MAX for MAX and 0 / -1 = -0.0 for AVE.
    x = torch.arange(7, dtype=torch.float32).reshape(1, 1, 1, 7).expand(1, 1, 7, 7).contiguous()
    mx = pool2d(x, "max", 2, 4, 0)[0, 0].numpy()
    assert mx.shape == (3, 3) and mx[0, 2] == -FLT_MAX and mx[2, 0] == -FLT_MAX
    ave = pool2d(x, "ave", 2, 4, 0)[0, 0].numpy()
    assert ave[0, 2] == 0 and np.signbit(ave[0, 2])


def test_global_pooling_and_errors():
    x = torch.randn(2, 3, 5, 7)
    from psp_torch.layers.pooling import Pooling
    g = Pooling("ave", global_pooling=True)
    assert g.output_shapes([(2, 3, 5, 7)]) == [(2, 3, 1, 1)]
    torch.testing.assert_close(g(x)[..., 0, 0], x.mean(dim=(2, 3)), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="smaller than kernel"):
        Pooling("max", 3, 2, 3)
    with pytest.raises(ValueError, match="outputs"):
        pool_output_size(2, 5, 1, 0)


# ---------------------------------------------------------------- interp

@st.composite
def interp_cases(draw):
    pad_beg, pad_end = draw(st.integers(-2, 0)), draw(st.integers(-2, 0))
    H = draw(st.integers(1 - pad_beg - pad_end, 11))
    W = draw(st.integers(1 - pad_beg - pad_end, 11))
    h2, w2 = draw(st.integers(1, 25)), draw(st.integers(1, 25))
    return H, W, h2, w2, pad_beg, pad_end, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=120, deadline=None)
@given(interp_cases())
def test_interp_matches_caffe_loops_exactly(case):
    H, W, h2, w2, pad_beg, pad_end, seed = case
    x = np.random.RandomState(seed).randn(2, H, W).astype(np.float32)
    expected = caffe_interp_reference(x, h2, w2, pad_beg, pad_end)
    ours = interp(torch.from_numpy(x)[None], (h2, w2), pad_beg, pad_end)[0].numpy()
    np.testing.assert_array_equal(ours, expected)


def test_interp_to_one_pixel_takes_the_first_pixel_of_the_crop():
    x = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(1, 2, 5, 6)
    y = interp(x, (1, 1))
    torch.testing.assert_close(y, x[..., :1, :1], rtol=0, atol=0)
    y = interp(x, (1, 1), pad_beg=-1, pad_end=-1)
    torch.testing.assert_close(y, x[..., 1:2, 1:2], rtol=0, atol=0)


def test_interp_corner_aligned_odd_sizes():
    x = torch.randn(1, 3, 7, 9)
    y = interp(x, (13, 17))                       # zoom 2 of 7x9: every other pixel is exact
    torch.testing.assert_close(y[..., ::2, ::2], x, rtol=0, atol=0)
    torch.testing.assert_close(y[..., -1, -1], x[..., -1, -1], rtol=0, atol=0)


def test_interp_output_size_precedence():
    assert interp_output_size(60, 60, zoom_factor=8) == (473, 473)
    assert interp_output_size(90, 90, zoom_factor=8) == (713, 713)
    assert interp_output_size(33, 65, shrink_factor=2) == (17, 33)
    assert interp_output_size(34, 66, shrink_factor=3, zoom_factor=2) == (23, 43)
    assert interp_output_size(20, 30, height=11, width=13, pad_beg=-1, pad_end=-2) == (11, 13)
    assert interp_output_size(20, 30, zoom_factor=2, pad_beg=-1, pad_end=-2) == (33, 53)
    # zoom alone wins over height/width; height/width win over shrink + zoom
    assert interp_output_size(10, 10, zoom_factor=2, height=5, width=5) == (19, 19)
    assert interp_output_size(10, 10, zoom_factor=2, shrink_factor=2, height=5, width=5) == (5, 5)
    with pytest.raises(ValueError, match="needs"):
        interp_output_size(10, 10, height=5)
    with pytest.raises(ValueError, match="<= 0"):
        interp_output_size(10, 10, zoom_factor=2, pad_beg=1)
    with pytest.raises(ValueError, match="leaves"):
        interp_output_size(2, 2, zoom_factor=2, pad_beg=-1, pad_end=-1)


# ---------------------------------------------------------------- convolution sizes

def test_conv_and_deconv_output_sizes():
    assert conv_output_size(21, 3, 2, 3, 4) == 10      # oracle conv_dilated: 21x23 -> 10x11
    assert conv_output_size(23, 3, 2, 3, 4) == 11
    assert conv_output_size(15, 3, 2, 1) == 8           # oracle conv_group_stride_bias
    assert conv_output_size(473, 3, 2, 1) == 237        # PSPNet stem
    assert deconv_output_size(7, 4, 2, 1) == 14 and deconv_output_size(8, 4, 2, 1) == 16
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_size(2, 5)
