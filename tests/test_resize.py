"""eval.resize: MATLAB imresize(..., 'bilinear') on hand-computed cases."""
import math

import cv2
import numpy as np
import pytest
import torch

from pspnet_caffe.eval.resize import contributions, imresize


def _ref_axis(a, n_out, antialias=True):
    """Loop transcription of MATLAB's per-axis resize along axis 0 (float64 result)."""
    n_in = a.shape[0]
    scale = n_out / n_in
    width = 2 / scale if (scale < 1 and antialias) else 2.0
    h = (lambda t: scale * max(0.0, 1 - abs(scale * t))) if (scale < 1 and antialias) else \
        (lambda t: max(0.0, 1 - abs(t)))
    out = np.zeros((n_out,) + a.shape[1:])
    for x in range(1, n_out + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        js = [left + k for k in range(math.ceil(width) + 2)]
        ws = np.array([h(u - j) for j in js])
        ws /= ws.sum()
        for j, w in zip(js, ws):
            m = (j - 1) % (2 * n_in)
            src = m if m < n_in else 2 * n_in - 1 - m
            out[x - 1] += w * a[src]
    return out


def _ref(a, rows, cols, order):
    out = a.astype(np.float64)
    for d in order:
        if d == 0:
            out = _ref_axis(out, rows)
        else:
            out = _ref_axis(out.swapaxes(0, 1), cols).swapaxes(0, 1)
        if a.dtype == np.uint8:
            out = np.clip(np.sign(out) * np.floor(np.abs(out) + 0.5), 0, 255)
    return out.astype(a.dtype)


def test_identity_at_same_size():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    assert np.array_equal(imresize(img, (7, 5)), img)
    f = rng.standard_normal((4, 7, 5)).astype(np.float32)
    assert torch.equal(imresize(torch.from_numpy(f), (7, 5), channels_first=True),
                       torch.from_numpy(f))


def test_enlarge_by_two_hand_computed():
    # u = x/2 + 1/4: out 1 = in 1 (mirror), out 2 = .75 in1 + .25 in2, out 3 = .25/.75, out 4 = in 2
    a = np.array([[0.0, 100.0]], np.float32)
    assert np.allclose(imresize(a, (1, 4)), [[0, 25, 75, 100]])
    w, idx = contributions(2, 4)
    assert np.allclose(w, [[.25, .75], [.75, .25], [.25, .75], [.75, .25]])
    assert idx.tolist() == [[0, 0], [0, 1], [0, 1], [1, 1]]


def test_shrink_by_two_antialiased_hand_computed():
    # scale 1/2: kernel width 4, weights (1/8, 3/8, 3/8, 1/8), u = 2x - 1/2
    a = np.array([[0.0, 10.0, 20.0, 30.0]], np.float32)
    out = imresize(a, (1, 2))
    assert np.allclose(out, [[6.25, 23.75]])
    # plain bilinear (no anti-aliasing) would give the two-pixel means 5 and 25
    w, _ = contributions(4, 2, antialias=False)
    assert np.allclose(w, [[.5, .5], [.5, .5]])


def test_antialiasing_only_when_shrinking():
    for n_in, n_out in [(5, 9), (3, 7), (4, 5)]:
        w, _ = contributions(n_in, n_out)
        assert w.shape[1] <= 2  # triangle of width 2: at most two taps when enlarging
    w, _ = contributions(10, 4)
    assert w.shape[1] > 2       # widened kernel when shrinking


def test_uint8_rounds_half_away_from_zero():
    a = np.array([[0, 2]], np.uint8)
    # 0.75 * 0 + 0.25 * 2 = 0.5 -> 1 (numpy's half-to-even would give 0)
    assert imresize(a, (1, 4)).tolist() == [[0, 1, 2, 2]]


def test_uint8_saturates_and_keeps_dtype():
    a = np.array([[255, 255], [255, 255]], np.uint8)
    out = imresize(a, (3, 5))
    assert out.dtype == np.uint8 and np.all(out == 255)


@pytest.mark.parametrize("shape,size", [((6, 9), (11, 4)), ((9, 6), (4, 11)), ((8, 8), (5, 13)),
                                        ((5, 7), (5, 3)), ((13, 10), (7, 7))])
def test_matches_loop_transcription_with_smaller_scale_first(shape, size):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    scales = (size[0] / shape[0], size[1] / shape[1])
    order = (0, 1) if scales[0] <= scales[1] else (1, 0)
    assert np.array_equal(imresize(a, size), _ref(a, *size, order))
    f = rng.standard_normal(shape).astype(np.float32)
    assert np.allclose(imresize(f, size), _ref(f, *size, order), atol=1e-6)


def test_uint8_rounds_between_passes():
    # rows enlarge (scale 2), cols shrink (scale 1/2): cols go first, rounded to uint8, then rows
    rng = np.random.default_rng(2)
    found = False
    for _ in range(50):
        a = rng.integers(0, 256, (3, 8), dtype=np.uint8)
        ours = imresize(a, (6, 4))
        assert np.array_equal(ours, _ref(a, 6, 4, (1, 0)))
        found |= not np.array_equal(ours, _ref(a, 6, 4, (0, 1)))
    assert found  # the order (and the rounding in between) is observable


def test_channels_first_tensor_float():
    rng = np.random.default_rng(3)
    f = rng.standard_normal((3, 6, 9)).astype(np.float32)
    hwc = imresize(f.transpose(1, 2, 0), (10, 4))
    chw = imresize(torch.from_numpy(f), (10, 4), channels_first=True)
    assert chw.dtype == torch.float32
    assert np.allclose(chw.numpy(), hwc.transpose(2, 0, 1), atol=1e-6)


def test_opencv_method_is_inter_linear():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    assert np.array_equal(imresize(a, (5, 12), "opencv"),
                          cv2.resize(a, (12, 5), interpolation=cv2.INTER_LINEAR))
    f = rng.standard_normal((20, 9, 7)).astype(np.float32)
    out = imresize(torch.from_numpy(f), (5, 12), "opencv", channels_first=True).numpy()
    ref = np.stack([cv2.resize(c, (12, 5), interpolation=cv2.INTER_LINEAR) for c in f])
    assert np.allclose(out, ref)


def test_bad_method_and_size():
    with pytest.raises(ValueError, match="resize method"):
        imresize(np.zeros((2, 2), np.uint8), (3, 3), "cubic")
    with pytest.raises(ValueError, match="positive"):
        contributions(0, 3)
