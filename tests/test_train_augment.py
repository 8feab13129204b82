"""train/augment.py on tiny arrays: label values never interpolated, borders 255 / mean,
crop sizes, determinism per seed, each step switchable."""
import numpy as np
import pytest

from pspnet_caffe.train import augment as A
from psp_torch import preprocess

MEAN = (123.68, 116.779, 103.939)


def _pair(h=13, w=17, seed=0):
    r = np.random.default_rng(seed)
    img = r.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lab = r.choice(np.array([0, 3, 7, 255], np.uint8), (h, w))
    return img, lab


def test_scale_keeps_label_values_and_sizes():
    img, lab = _pair()
    for seed in range(20):
        i2, l2 = A.random_scale(img.astype(np.float32), lab, np.random.default_rng(seed))
        assert i2.shape[:2] == l2.shape and i2.shape[2] == 3
        assert set(np.unique(l2)) <= {0, 3, 7, 255}
        s = l2.shape[0] / 13
        assert 0.5 - 0.05 <= s <= 2.0 + 0.05


def test_rotation_borders_are_mean_and_255_and_labels_not_interpolated():
    img = np.full((21, 21, 3), 10, np.float32)
    lab = np.full((21, 21), 3, np.uint8)
    lab[:, 10:] = 7
    i2, l2 = A.rotate(img, lab, 10.0, MEAN)
    assert set(np.unique(l2)) == {3, 7, 255}
    assert l2[0, 0] == 255 and l2[20, 20] == 255 and l2[10, 10] in (3, 7)
    assert np.allclose(i2[0, 0], MEAN, atol=1e-3)          # corner rotated out: the mean colour
    assert np.allclose(i2[10, 10], 10)
    assert A.rotate(img, lab, 0.0, MEAN)[1].tolist() == lab.tolist()


def test_blur_changes_image_only_and_is_5x5():
    img = np.zeros((11, 11, 3), np.float32)
    img[5, 5] = 100
    out = A.cv2.GaussianBlur(img, (5, 5), 0)
    # the 5x5 support: nothing beyond 2 pixels from the impulse
    assert out[5, 8].max() == 0 and out[5, 7].max() > 0
    hit = [A.random_blur(img, np.random.default_rng(s)) for s in range(20)]
    assert any(h is img for h in hit) and any(h is not img for h in hit)   # p = 0.5


def test_pad_center_and_bottom_right():
    img, lab = _pair(5, 7)
    i2, l2 = A.pad_to_crop(img.astype(np.float32), lab, 9, MEAN, "center")
    assert l2.shape == (9, 9) and i2.shape == (9, 9, 3)
    assert (l2[:2] == 255).all() and (l2[7:] == 255).all() and (l2[:, :1] == 255).all()
    assert (l2[2:7, 1:8] == lab).all()
    assert np.allclose(i2[0, 0], MEAN)
    i3, l3 = A.pad_to_crop(img.astype(np.float32), lab, 9, MEAN, "bottom_right")
    assert (l3[:5, :7] == lab).all() and (l3[5:] == 255).all() and (l3[:, 7:] == 255).all()
    assert np.allclose(i3[8, 8], MEAN)


@pytest.mark.parametrize("mode", A.MODES)
def test_pipeline_crop_size_label_values_and_determinism(mode):
    img, lab = _pair(31, 23)
    aug = A.recipe(mode, 17)
    outs = [A.apply(aug, img, lab, A.sample_rng(5, p)) for p in range(12)]
    for i, l in outs:
        assert i.shape == (17, 17, 3) and i.dtype == np.float32
        assert l.shape == (17, 17) and l.dtype == np.uint8
        assert set(np.unique(l)) <= {0, 3, 7, 255}
    again = [A.apply(aug, img, lab, A.sample_rng(5, p)) for p in range(12)]
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(outs, again))
    distinct = {o[1].tobytes() for o in outs}
    assert (len(distinct) == 1) == (mode == "none")        # only "none" draws nothing


def test_none_is_identity_at_the_crop_size_and_matches_preprocess():
    img, lab = _pair(17, 17)
    i2, l2 = A.apply(A.recipe("none", 17), img, lab, A.sample_rng(0, 0))
    assert np.array_equal(l2, lab) and np.array_equal(i2, img.astype(np.float32))
    assert np.array_equal(A.network_input(i2, MEAN), preprocess(img)[0].numpy())


def test_switches():
    a = A.recipe("paper", 473, rotate=False, blur=False)
    assert a.rotate == 0 and not a.blur and a.scale_range == (0.5, 2.0) and a.mirror
    c = A.recipe("caffe", 473)
    assert c.scale_list == A.CAFFE_SCALES and c.pad == "bottom_right" and c.rotate == 0
    with pytest.raises(ValueError):
        A.recipe("fancy", 473)
    with pytest.raises(ValueError, match="label"):
        A.apply(c, np.zeros((4, 5, 3), np.uint8), np.zeros((4, 6), np.uint8),
                np.random.default_rng(0))


def test_paper_ranges_are_read_from_the_dataset_recipe():
    import dataclasses

    from psp_torch.datasets import get
    from pspnet_caffe.train import data as D
    for name in ("voc", "ade20k", "cityscapes", "custom"):
        r = get(name).train
        a = A.recipe("paper", 473, rotate=r.rotate, blur=r.blur, train=r)
        assert a.scale_range == r.scale_range and a.blur_kernel == r.blur_kernel
        assert a.rotate_range == (r.rotate_range if r.rotate else None)
        assert D.training_facts(None if name == "custom" else name)["recipe"] is r
    odd = dataclasses.replace(get("ade20k").train, scale_range=(1.0, 1.0),
                              rotate_range=(4.0, 6.0), blur_kernel=9)
    a = A.recipe("paper", 17, train=odd)
    assert (a.scale_range, a.rotate_range, a.blur_kernel, a.rotate) == ((1.0, 1.0), (4.0, 6.0),
                                                                       9, 6.0)
    # the pipeline follows the recipe: scale 1 keeps the size; only the kernel differs, and so
    # do the blurred images (the same draws otherwise)
    img, lab = _pair(17, 17)
    keep = A.recipe("paper", 17, rotate=False, blur=False, train=odd)
    for p in range(8):
        out = A.apply(keep, img, lab, A.sample_rng(3, p))[1]
        assert np.array_equal(out, lab) or np.array_equal(out, lab[:, ::-1])    # mirror only
    ade = get("ade20k").train
    runs = [[A.apply(A.recipe("paper", 17, rotate=False, train=t), img, lab, A.sample_rng(3, p))
             for p in range(8)] for t in (ade, dataclasses.replace(ade, blur_kernel=9))]
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(*runs))
    assert any(not np.array_equal(x[0], y[0]) for x, y in zip(*runs))
