"""eval.metrics against a transcription of eval_acc.m / intersectionAndUnion.m / pixelAccuracy.m."""
import numpy as np
import pytest

from pspnet_caffe.eval.metrics import MATLAB_EPS, Stats, cityscapes_miou, image_stats, iou, summary


def _matlab(preds, labels, C):
    """The MATLAB scripts step by step: 1-based ids, 0 = unlabelled, hist over 0:C."""
    inters, unions, correct, labelled = [], [], [], []
    for pred, lab in zip(preds, labels):
        im_anno = np.minimum(lab.astype(np.int64) + 1, 255)      # uint8 saturating + 1
        im_anno[im_anno == 255] = 0
        im_pred = pred.astype(np.int64) + 1
        p = im_pred.ravel() * (im_anno.ravel() > 0)
        a = im_anno.ravel()
        inter = p * (p == a)
        hist = lambda v: np.histogram(v, bins=np.arange(C + 2) - 0.5)[0]
        ai, ap, al = hist(inter), hist(p), hist(a)
        inters.append(ai[1:])
        unions.append((ap + al - ai)[1:])
        labelled.append((a > 0).sum())
        correct.append(((im_pred.ravel() == a) * (a > 0)).sum())
    I = np.sum(inters, 0)
    U_eps = np.sum([MATLAB_EPS + u for u in unions], 0)
    IoU = I / U_eps
    return IoU, IoU.mean(), sum(correct) / sum(labelled)


def _score(preds, labels, C):
    st = Stats(C)
    for p, l in zip(preds, labels):
        st.add(image_stats(p, l, C))
    return st


CASES = {}
rng = np.random.default_rng(0)
lab = rng.integers(0, 4, (6, 7)).astype(np.uint8)
lab[0, :] = 255
CASES["all correct"] = ([lab.astype(np.int64).clip(0, 3)], [lab])
CASES["all wrong"] = ([(lab.astype(np.int64) + 1) % 5], [lab])
CASES["random, two images"] = ([rng.integers(0, 5, (6, 7)), rng.integers(0, 5, (3, 4))],
                               [lab, rng.choice([0, 1, 255], (3, 4)).astype(np.uint8)])
ign = np.full((4, 4), 255, np.uint8)
ign[:2] = 1
pred_ign = np.full((4, 4), 2)
pred_ign[:2] = 1
CASES["ignored pixels predicted"] = ([pred_ign], [ign])


@pytest.mark.parametrize("name", list(CASES))
def test_matches_matlab_scripts(name):
    preds, labels = CASES[name]
    C = 5
    st = _score(preds, labels, C)
    IoU, miou, acc = _matlab(preds, labels, C)
    s = summary(st)
    assert np.array_equal(iou(st), IoU)          # same formula, same float operations
    assert s["miou"] == pytest.approx(miou, abs=1e-15)
    assert s["pixel_acc"] == pytest.approx(acc, abs=1e-15)


def test_crafted_values():
    st = _score(*CASES["all correct"], 5)
    present = np.unique(CASES["all correct"][1][0][1:])
    assert np.allclose(iou(st)[present], 1) and np.all(iou(st)[4] == 0)
    assert summary(st)["pixel_acc"] == 1.0
    assert summary(st)["miou"] == pytest.approx(len(present) / 5)   # absent classes count as 0
    wrong = _score(*CASES["all wrong"], 5)
    assert summary(wrong)["miou"] == 0 and summary(wrong)["pixel_acc"] == 0
    ig = _score(*CASES["ignored pixels predicted"], 5)
    assert ig.union[2] == 0 and ig.labelled == 8 and ig.correct == 8   # class 2 only on ignore
    assert iou(ig)[1] == pytest.approx(1.0)


def test_cityscapes_script_mean_skips_absent_classes():
    st = _score(*CASES["all correct"], 5)
    present = st.union > 0
    assert cityscapes_miou(st) == pytest.approx(1.0)
    assert summary(st)["miou"] == pytest.approx(present.sum() / 5)
    full = Stats(3, np.array([[5, 3, 2, 0], [1, 2, 0, 0], [0, 0, 1, 1]]), 2)
    assert cityscapes_miou(full) == pytest.approx(summary(full)["miou"])   # every class present


def test_stats_vector_round_trip_and_sharding_is_exact():
    preds, labels = CASES["random, two images"]
    whole = _score(preds, labels, 5)
    a = _score(preds[:1], labels[:1], 5)
    b = _score(preds[1:], labels[1:], 5)
    summed = Stats.from_vector(a.to_vector() + b.to_vector(), 5)
    assert np.array_equal(summed.to_vector(), whole.to_vector())
    assert whole.to_vector().dtype == np.int64 and whole.images == 2


def test_bad_inputs():
    with pytest.raises(ValueError, match="differ in size"):
        image_stats(np.zeros((2, 2)), np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match="label values"):
        image_stats(np.zeros((2, 2)), np.full((2, 2), 7), 3)
    with pytest.raises(ValueError, match="prediction values"):
        image_stats(np.full((2, 2), 3), np.zeros((2, 2)), 3)
