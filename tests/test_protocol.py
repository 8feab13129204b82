"""eval.protocol: the authors' scale / window / flip / averaging steps on small inputs."""
import numpy as np
import pytest
import torch
from torch import nn

from pspnet_caffe.eval.protocol import (Settings, grid_count, net_input, pad_bottom_right, predict,
                           renormalise, scale_probs, scaled_size, segment, window_probs,
                           window_starts, windows, window_stride)
from pspnet_caffe.eval.resize import imresize

MEAN = (123.68, 116.779, 103.939)


# ---------------------------------------------------------------- scales

def test_scaled_size_long_side_is_base_times_scale_plus_one():
    assert scaled_size(366, 500, 512, 1.0) == (376, 513)      # round(513/500*366 = 375.5)
    assert scaled_size(500, 334, 512, 1.0) == (513, 343)      # rows longer: cols computed
    for s, long in [(0.5, 257), (0.75, 385), (1.25, 641), (1.5, 769), (1.75, 897)]:
        assert max(scaled_size(366, 500, 512, s)) == long


def test_scaled_size_rounds_half_away_in_single_precision():
    # Cityscapes at scale 1: 2049 / 2048 * 1024 = 1024.5 exactly -> 1025 (half away from zero)
    assert scaled_size(1024, 2048, 2048, 1.0) == (1025, 2049)
    # a square image counts as "cols longer": rows are computed from cols
    assert scaled_size(300, 300, 512, 1.0) == (513, 513)


def test_scaled_size_uses_float32_arithmetic():
    """MATLAB: round(long/single(ori_rows)*ori_cols) is evaluated in single precision."""
    hits = 0  # search cases where float32 and float64 round differently
    for cols in range(2, 2000):
        for rows in (cols + 1, cols + 7, 2 * cols + 1):
            r32 = float(np.float32(513) / np.float32(rows) * np.float32(cols))
            r64 = 513 / rows * cols
            if np.floor(r32 + .5) != np.floor(r64 + .5):
                assert scaled_size(rows, cols, 512, 1.0)[1] == int(np.floor(r32 + .5))
                hits += 1
    assert hits > 0


# ---------------------------------------------------------------- windows

def test_stride_is_two_thirds_of_crop_rounded_up():
    assert window_stride(473) == 316 and window_stride(713) == 476


@pytest.mark.parametrize("padded,starts", [
    (473, [0]), (474, [0, 1]), (513, [0, 40]), (789, [0, 316]), (790, [0, 316, 317]),
    (1025, [0, 316, 552]), (2049, [0, 316, 632, 948, 1264, 1576])])
def test_window_starts_crop_473(padded, starts):
    assert grid_count(padded, 473) == len(starts)
    assert window_starts(padded, 473) == starts


def test_window_grid_cityscapes_1025x2049():
    assert window_starts(1025, 713) == [0, 312]
    assert window_starts(2049, 713) == [0, 476, 952, 1336]
    w = windows(1025, 2049, 713)
    assert len(w) == 8 and w[:4] == [(0, 0), (0, 476), (0, 952), (0, 1336)]  # row-major
    assert all(y + 713 <= 1025 and x + 713 <= 2049 for y, x in w)


# ---------------------------------------------------------------- padding and input

def test_pad_uint8_uses_mean_rounded_to_uint8():
    img = np.zeros((2, 3, 3), np.uint8)
    out = pad_bottom_right(img, 4, 5, MEAN)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert out[3, 4].tolist() == [124, 117, 104] and out[:2, :3].max() == 0


def test_single_window_input_pads_with_exact_mean():
    img = np.full((2, 3, 3), 200, np.uint8)
    x = net_input(img, 5, MEAN)
    assert x.shape == (3, 5, 5) and x.dtype == np.float32
    assert np.all(x[:, 2:, :] == 0) and np.all(x[:, :, 3:] == 0)     # padding exactly 0
    assert x[0, 0, 0] == np.float32(200) - np.float32(103.939)      # channel 0 is B
    assert x[2, 0, 0] == np.float32(200) - np.float32(123.68)       # channel 2 is R


class Spy(nn.Module):
    """Pointwise (1x1) scores; records every batch it sees."""

    def __init__(self, classes=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, classes, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.05)
            self.conv.bias.copy_(torch.randn(classes, generator=g))
        self.seen = []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.conv(x)


def _settings(**kw):
    base = dict(num_classes=3, crop_size=16, base_size=20, scales=(1.0,), batch=2)
    base.update(kw)
    return Settings(**base)


def test_sliding_path_pads_uint8_mean_before_subtraction():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (10, 21, 3), dtype=np.uint8)     # long 21 > crop 16, short 10
    spy = Spy()
    scale_probs(spy, img, _settings(flip=False))
    x = torch.cat(spy.seen)
    assert x.shape == (2, 3, 16, 16)                              # windows at x = 0 and 5
    pad = x[0, :, 10:, :]
    expect = torch.tensor([104 - np.float32(103.939), 117 - np.float32(116.779),
                           124 - np.float32(123.68)], dtype=torch.float32)
    assert torch.equal(pad, expect[:, None, None].expand_as(pad))
    assert torch.allclose(expect, torch.tensor([0.061, 0.221, 0.32]), atol=1e-5)


def test_single_window_path_runs_once_and_crops_back():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    spy = Spy()
    p = scale_probs(spy, img, _settings())
    assert len(spy.seen) == 1 and spy.seen[0].shape == (2, 3, 16, 16)   # crop and its mirror
    assert p.shape == (3, 9, 12)
    assert torch.all(spy.seen[0][0, :, 9:, :] == 0)


# ---------------------------------------------------------------- flip, softmax, batching

class ColumnBiased(nn.Module):
    """Not flip-equivariant: adds a ramp over columns to class 0."""

    def forward(self, x):
        s = torch.stack([x[:, 0], x[:, 1] * 0.5, -x[:, 2]], 1) * 0.01
        s[:, 0] += torch.arange(x.shape[-1], dtype=x.dtype) * 0.1
        return s


def test_flip_sums_raw_scores_then_softmax():
    x = torch.randn(3, 3, 8, 8) * 50
    m = ColumnBiased()
    got = window_probs(m, x, _settings(crop_size=8, batch=4))
    expect = torch.softmax(m(x) + m(x.flip(-1)).flip(-1), dim=1)
    assert torch.allclose(got, expect, atol=1e-6)
    no_flip = window_probs(m, x, _settings(crop_size=8, flip=False))
    assert torch.allclose(no_flip, torch.softmax(m(x), 1), atol=1e-6)
    assert not torch.allclose(got, no_flip, atol=1e-3)


@pytest.mark.parametrize("batch", [1, 2, 5, 8])
def test_windows_and_mirrors_go_in_batches(batch):
    x = torch.randn(3, 3, 8, 8)
    spy = Spy()
    out = window_probs(spy, x, _settings(crop_size=8, batch=batch))
    assert all(b.shape[0] <= batch for b in spy.seen) and sum(b.shape[0] for b in spy.seen) == 6
    ref = window_probs(Spy(), x, _settings(crop_size=8, batch=6))
    assert torch.allclose(out, ref, atol=1e-6)


def test_overlap_average_of_pointwise_model_equals_per_pixel_scores():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (18, 23, 3), dtype=np.uint8)      # 2 x 2 overlapping windows
    spy = Spy()
    p = scale_probs(spy, img, _settings())
    x = torch.from_numpy(net_input(img, 23, MEAN))[None]          # the whole image at once
    expect = torch.softmax(2 * spy.conv(x), 1)[0, :, :18, :23]
    assert p.shape == (3, 18, 23)
    assert torch.allclose(p, expect, atol=1e-6)


def test_renormalise_and_argmax_first_on_ties():
    p = torch.tensor([[[1.0, 2.0]], [[1.0, 2.0]], [[2.0, 0.0]]])
    r = renormalise(p)
    assert torch.allclose(r.sum(0), torch.ones(1, 2))
    assert predict(torch.tensor([[[0.5]], [[0.5]]])).tolist() == [[0]]
    assert predict(r).tolist() == [[2, 0]]


def test_segment_averages_renormalised_scales():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (11, 14, 3), dtype=np.uint8)
    st = _settings(scales=(0.5, 1.25))
    out = segment(Spy(), img, st)
    assert out.shape == (3, 11, 14) and out.dtype == torch.float32
    assert torch.allclose(out.sum(0), torch.ones(11, 14), atol=1e-5)
    parts = []
    for s in st.scales:
        img_s = imresize(img, scaled_size(11, 14, 20, s))
        parts.append(renormalise(imresize(scale_probs(Spy(), img_s, st), (11, 14),
                                          channels_first=True)))
    assert torch.allclose(out, (parts[0] + parts[1]) / 2, atol=1e-6)


def test_segment_rejects_non_rgb_uint8():
    with pytest.raises(ValueError, match="RGB uint8"):
        segment(Spy(), np.zeros((4, 4), np.uint8), _settings())


def test_wrong_score_shape_is_reported():
    with pytest.raises(ValueError, match="expected"):
        window_probs(Spy(classes=4), torch.zeros(1, 3, 8, 8), _settings(crop_size=8))


class WindowDependent(nn.Module):
    """Scores depend on the whole window (its mean) and on the position: overlap matters."""

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3), keepdim=True) * 0.1
        ramp = torch.arange(x.shape[-1], dtype=x.dtype) / x.shape[-1]
        return torch.cat([x[:, :1] * 0.002 + m, x[:, 1:2] * 0.003 - m, ramp.expand_as(x[:, :1])],
                         1)


def _scale_process_transcribed(model, img, crop, mean):
    """scale_process.m line by line (1-based loops), flip and exp-normalisation included."""
    new_rows, new_cols = img.shape[:2]
    stride = int(np.ceil(crop * 2 / 3))
    pad = img
    if new_rows < crop:
        pad = np.concatenate([pad, np.broadcast_to(np.array([124, 117, 104], np.uint8),
                                                   (crop - new_rows, pad.shape[1], 3))], 0)
    if new_cols < crop:
        pad = np.concatenate([pad, np.broadcast_to(np.array([124, 117, 104], np.uint8),
                                                   (pad.shape[0], crop - new_cols, 3))], 1)
    pr, pc = pad.shape[:2]
    hg = int(np.ceil(np.float32(pr - crop) / stride)) + 1
    wg = int(np.ceil(np.float32(pc - crop) / stride)) + 1
    data = np.zeros((3, pr, pc), np.float32)
    count = np.zeros((3, pr, pc), np.float32)
    for gy in range(1, hg + 1):
        for gx in range(1, wg + 1):
            sx, sy = (gx - 1) * stride + 1, (gy - 1) * stride + 1
            ex, ey = min(sx + crop - 1, pc), min(sy + crop - 1, pr)
            sx, sy = ex - crop + 1, ey - crop + 1
            sub = pad[sy - 1:ey, sx - 1:ex].astype(np.float32) - np.float32(mean)
            x = torch.from_numpy(np.ascontiguousarray(sub[:, :, ::-1].transpose(2, 0, 1)))[None]
            with torch.no_grad():
                s = model(x) + model(x.flip(-1)).flip(-1)
            s = torch.exp(s)
            s = (s / s.sum(1, keepdim=True))[0].numpy()
            count[:, sy - 1:ey, sx - 1:ex] += 1
            data[:, sy - 1:ey, sx - 1:ex] += s
    return (data / count)[:, :new_rows, :new_cols]


@pytest.mark.parametrize("shape", [(10, 37), (23, 29), (40, 17)])
def test_sliding_windows_match_transcribed_scale_process(shape):
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    model = WindowDependent()
    ours = scale_probs(model, img, _settings(batch=3))
    ref = _scale_process_transcribed(model, img, 16, np.array(MEAN, np.float32))
    assert ours.shape == ref.shape[0:1] + shape
    assert ref.min() > 1e-4                                   # no saturated classes
    assert np.allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- MATLAB's softmax and max

from pspnet_caffe.eval.protocol import (SoftmaxCounts, matlab_validity, segment_counted,  # noqa
                                        softmax)
from pspnet_caffe.eval.resize import contributions                                     # noqa

NAN = float("nan")


def test_float32_exp_overflows_above_log_flt_max():
    e = torch.exp(torch.tensor([88.72283172607422, 88.72283935546875], dtype=torch.float32))
    assert torch.isfinite(e[0]) and torch.isinf(e[1])


def test_matlab_softmax_overflow_underflow_cases():
    # pixels: normal; one class overflows; only the class sum overflows; every exp underflows
    s = torch.tensor([[1.0, 89.0, 88.5, -110.0], [2.0, 0.0, 88.5, -110.0],
                      [3.0, 0.0, 88.5, -110.0]]).reshape(1, 3, 1, 4)
    m = softmax(s, "matlab")[0, :, 0]
    st = softmax(s, "stable")[0, :, 0]
    assert torch.allclose(m[:, 0], st[:, 0], atol=1e-7)
    assert torch.isnan(m[0, 1]) and m[1:, 1].tolist() == [0, 0]       # Inf/Inf, x/Inf
    assert m[:, 2].tolist() == [0, 0, 0]                              # x/Inf for every class
    assert torch.isnan(m[:, 3]).all()                                 # 0/0
    assert torch.isfinite(st).all() and torch.allclose(st.sum(0), torch.ones(4))
    v = matlab_validity(s)[0, 0, 0]
    assert v[0] == 1 and torch.isnan(v[1]) and v[2] == 0 and torch.isnan(v[3])
    with pytest.raises(ValueError, match="softmax"):
        softmax(s, "fast")


def test_predict_is_matlab_max_nan_ignored_all_nan_is_first():
    p = torch.tensor([[[NAN, NAN, 0.5, NAN]], [[0.2, NAN, 0.5, 0.1]], [[0.8, NAN, 0.1, 0.3]]])
    assert predict(p).tolist() == [[2, 0, 0, 2]]


def test_nan_spreads_through_imresize_to_every_output_with_it_among_its_taps():
    for src, dst in [((9, 11), (20, 25)), ((20, 25), (9, 11)), ((12, 13), (12, 20))]:
        a = np.ones((1,) + src, np.float32)
        r, c = src[0] // 2, src[1] // 3
        a[0, r, c] = NAN
        out = imresize(a, dst, channels_first=True)[0]
        _, rows = contributions(src[0], dst[0])
        _, cols = contributions(src[1], dst[1])
        expect = (rows == r).any(1)[:, None] & (cols == c).any(1)[None, :]
        assert np.array_equal(np.isnan(out), expect) and expect.any()
        assert np.all(out[~expect] == 1)


class Hot(nn.Module):
    """WindowDependent scores plus `boost` on every class or on class 0 where red > 150."""

    def __init__(self, boost, every_class=False):
        super().__init__()
        self.boost, self.every_class = boost, every_class
        self.base = WindowDependent()

    def forward(self, x):
        s = self.base(x)
        hot = (x[:, 2:3] > 150 - 123.68).to(x.dtype) * self.boost
        if self.every_class:
            return s * 0 + hot
        return torch.cat([s[:, :1] + hot, s[:, 1:]], 1)


def _hot_image(shape=(18, 23)):
    rng = np.random.default_rng(5)
    img = rng.integers(0, 120, shape + (3,), dtype=np.uint8)
    img[4:9, 6:12, 0] = 200                                       # a red patch
    return img


def test_matlab_softmax_scale_process_equals_transcription_nan_included():
    img = _hot_image()
    model = Hot(50.0)                                            # image + mirror: 100 > 88.72
    ours = scale_probs(model, img, _settings(batch=3, softmax="matlab")).numpy()
    ref = _scale_process_transcribed(model, img, 16, np.array(MEAN, np.float32))
    assert np.isnan(ref).any() and np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.allclose(ours, ref, rtol=1e-5, atol=1e-7, equal_nan=True)
    stable = scale_probs(model, img, _settings(batch=3)).numpy()
    assert np.isfinite(stable).all()


@pytest.mark.parametrize("boost,every,scales", [(50.0, False, (1.0,)), (50.0, False, (0.5, 1.3)),
                                                (44.3, True, (1.0,)), (44.3, True, (0.7, 1.2))])
def test_counts_equal_the_nan_pixels_of_the_matlab_path(boost, every, scales):
    """The validity channel predicts, in a stable run, exactly the pixels that MATLAB's path
    turns NaN (and MATLAB's max then labels 0)."""
    img = _hot_image()
    st = dict(scales=scales, base_size=22)                       # 23 -> 23 at scale 1: a copy
    model = Hot(boost, every)
    p_m, c_m = segment_counted(model, img, _settings(softmax="matlab", **st))
    p_s, c_s = segment_counted(model, img, _settings(**st))
    nan = torch.isnan(p_m).any(0)
    assert c_m == c_s and c_m.checked == 1
    assert c_m.nan_pixels == int(nan.sum()) > 0 and c_m.images == 1
    assert torch.isnan(p_m[:, nan]).all()                        # renormalised: whole pixel
    assert (predict(p_m)[nan.numpy()] == 0).all()
    assert torch.isfinite(p_s).all()
    assert np.array_equal(predict(p_m)[~nan.numpy()], predict(p_s)[~nan.numpy()]) or every
    if every and len(scales) > 1:                                 # zero pixels mixed in: altered
        assert c_m.altered_pixels > 0


def test_counts_are_zero_for_ordinary_scores_and_survive_png_meta():
    p, c = segment_counted(WindowDependent(), _hot_image(), _settings(scales=(0.5, 1.0)))
    assert c == SoftmaxCounts(0, 0, 0, 1)
    c2 = SoftmaxCounts(7, 3, 1, 1)
    assert SoftmaxCounts.from_meta(c2.as_meta()) == c2
    assert SoftmaxCounts.from_meta({}) == SoftmaxCounts()         # foreign PNG: not checked
    total = SoftmaxCounts().add(c2).add(c)
    assert SoftmaxCounts.from_vector(total.to_vector()) == SoftmaxCounts(7, 3, 1, 2)
