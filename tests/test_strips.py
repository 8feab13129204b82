"""The protocol in strips of output rows (eval/strips.py) gives the labels and softmax counts of
the whole-image protocol, bit for bit: several image shapes (non-square, odd, smaller than a
crop, larger than a window), every scale set (MS + flip), several strip heights, NaN included."""
import numpy as np
import pytest
import torch
from torch import nn

from pspnet_caffe.eval.protocol import Settings, predict, segment_counted
from pspnet_caffe.eval.resize import RowsOfResize, imresize
from pspnet_caffe.eval.strips import label_dtype, segment_in_strips, strip_height, wants_strips
from psp_torch.datasets import MS_SCALES


class Local(nn.Module):
    """3x3 convolution scores: each window's scores depend on its neighbourhood and borders."""

    def __init__(self, classes=5, seed=0, hot=0.0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv = nn.Conv2d(3, classes, 3, padding=1)
        self.hot = hot
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.02)
            self.conv.bias.copy_(torch.randn(classes, generator=g) * 0.3)

    def forward(self, x):
        s = self.conv(x)
        if self.hot:        # class 0 boosted where red is high: exp overflows (matlab softmax)
            s = torch.cat([s[:, :1] + (x[:, 2:3] > 20).to(x.dtype) * self.hot, s[:, 1:]], 1)
        return s


def _image(shape, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    img[shape[0] // 3: shape[0] // 2, :, 0] = 250
    return img


def _settings(classes=5, **kw):
    base = dict(num_classes=classes, crop_size=16, base_size=20, scales=(1.0,), batch=3)
    base.update(kw)
    return Settings(**base)


@pytest.mark.parametrize("shape", [(7, 5), (18, 23), (41, 17), (33, 64), (50, 50)])
@pytest.mark.parametrize("scales", [(1.0,), MS_SCALES])
def test_strips_equal_the_whole_image(shape, scales):
    img = _image(shape, seed=shape[0])
    model = Local()
    settings = _settings(scales=scales)
    probs, counts = segment_counted(model, img, settings)
    whole = predict(probs)
    for rows in (1, 4, 13, None):
        labels, strip_counts = segment_in_strips(model, img, settings, strip_rows=rows)
        assert labels.shape == shape and labels.dtype == np.uint8
        assert np.array_equal(labels, whole), (shape, scales, rows)
        assert strip_counts == counts
    assert len(np.unique(whole)) > 1                # a test that can fail: labels vary


@pytest.mark.parametrize("softmax", ["matlab", "stable"])
def test_strips_follow_matlab_softmax_nan_and_counts(softmax):
    img = _image((26, 37), seed=3)
    model = Local(hot=50.0)                         # image + mirror: 100 > 88.72
    settings = _settings(scales=(0.5, 1.0, 1.3), softmax=softmax)
    probs, counts = segment_counted(model, img, settings)
    assert counts.nan_pixels > 0
    if softmax == "matlab":
        assert torch.isnan(probs).any()
    done = []
    labels, strip_counts = segment_in_strips(model, img, settings, strip_rows=5,
                                             progress=done.append)
    assert np.array_equal(labels, predict(probs)) and strip_counts == counts
    assert done == [5, 10, 15, 20, 25, 26]


def test_no_flip_and_single_window():
    img = _image((9, 14), seed=9)
    settings = _settings(flip=False, scales=(0.6, 1.0), crop_size=32)
    labels, _ = segment_in_strips(Local(seed=2), img, settings, strip_rows=2)
    assert np.array_equal(labels, predict(segment_counted(Local(seed=2), img, settings)[0]))


@pytest.mark.parametrize("src,dst", [((13, 17), (40, 31)), ((40, 31), (13, 17)),
                                     ((20, 9), (7, 30)), ((6, 6), (6, 6))])
def test_rows_of_resize_equal_the_rows_of_the_whole_resize(src, dst):
    rng = np.random.default_rng(1)
    a = torch.from_numpy(rng.random((3,) + src, dtype=np.float32))
    a[1, src[0] // 2, 2] = float("nan")
    whole = imresize(a, dst, channels_first=True)
    rows = RowsOfResize(*src, dst)
    for r0, r1 in [(0, 1), (0, dst[0]), (2, 5), (dst[0] - 1, dst[0])]:
        part = rows(a, r0, r1)
        assert torch.equal(part.isnan(), whole[:, r0:r1].isnan())
        assert torch.equal(torch.nan_to_num(part), torch.nan_to_num(whole[:, r0:r1]))


def test_strip_height_label_type_and_automatic_choice():
    assert strip_height(150, 10000) == (1 << 24) // (151 * 10000) == 11
    assert strip_height(150, 10 ** 9) == 1
    assert label_dtype(150) == np.uint8 and label_dtype(256) == np.uint8
    assert label_dtype(257) == np.int32
    assert wants_strips(150, 10000, 10000) and not wants_strips(150, 500, 500)
    assert not wants_strips(150, 10000, 10000, resize="opencv")


def test_opencv_resize_is_refused():
    with pytest.raises(ValueError, match="matlab"):
        segment_in_strips(Local(), _image((8, 8)), _settings(resize="opencv"))
