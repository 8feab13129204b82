"""eval.metrics against transcriptions of eval_acc.m / intersectionAndUnion.m / pixelAccuracy.m
(VOC/Cityscapes conventions), the scene-parsing toolkit (ADE20K), the VOC devkit's average and
the Cityscapes evalPixelLevelSemanticLabeling.py (IoU / iIoU per class and category)."""
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


# ---------------------------------------------------------------- "no class" predictions

def _sceneparsing(pred_ids, anno):
    """The scene-parsing toolkit (utils_eval.py / intersectionAndUnion.m) on dataset ids:
    0 = unlabelled in the annotation, 0 = "other" in the prediction; bins 1..150."""
    pred = pred_ids.astype(np.int64) * (anno > 0)
    inter = pred * (pred == anno)
    hist = lambda v: np.bincount(v.ravel(), minlength=151)[1:]
    ai, ap, al = hist(inter), hist(pred), hist(anno.astype(np.int64))
    correct = int(((pred_ids == anno) & (anno > 0)).sum())
    return ai, ap + al - ai, correct, int((anno > 0).sum())


def test_ade20k_other_predictions_score_as_misses_as_the_toolkit():
    from psp_torch.datasets import get
    ade = get("ade20k")
    rng = np.random.default_rng(7)
    anno = rng.integers(0, 4, (9, 11)).astype(np.uint8)          # 0 = unlabelled
    pred_ids = rng.integers(0, 4, (9, 11)).astype(np.uint8)      # 0 = "other": no class
    assert (pred_ids == 0).sum() > 10 and ((pred_ids == 0) & (anno > 0)).sum() > 5
    st = image_stats(ade.from_dataset_ids(pred_ids), ade.decode_label(anno), 150)
    ai, au, correct, labelled = _sceneparsing(pred_ids, anno)
    assert np.array_equal(st.intersection, ai) and np.array_equal(st.union, au)
    assert (st.correct, st.labelled) == (correct, labelled)
    # a pixel labelled 2 predicted "other": a miss of class 2 (id 1), a false positive of none
    one = image_stats(np.array([[255]]), np.array([[1]], np.uint8), 150)
    assert one.union[1] == 1 and one.intersection.sum() == 0 and one.pred_area.sum() == 0
    assert (one.correct, one.labelled) == (0, 1)


# ---------------------------------------------------------------- VOC devkit's average

def test_voc_absent_class_scores_zero_where_the_devkit_averages_nan():
    """VOCevalseg.m: IoU_j = conf(j,j) / (gt_j + res_j - conf(j,j)) -> 0/0 = NaN for a class
    absent from labels and predictions, so its mean is NaN on such subsets. Ours: that class
    scores 0 (eps in the denominator) and still counts in the mean over all 21 classes."""
    lab = np.zeros((4, 4), np.uint8)
    lab[:2] = 15                                                 # background and person only
    pred = lab.astype(np.int64)
    st = image_stats(pred, lab, 21)
    conf = np.zeros((21, 21))
    np.add.at(conf, (lab.ravel(), pred.ravel()), 1)
    with np.errstate(invalid="ignore"):
        devkit = np.diag(conf) / (conf.sum(1) + conf.sum(0) - np.diag(conf))
    assert np.isnan(devkit.mean()) and np.nanmean(devkit) == 1.0
    s = summary(st)
    assert s["iou"][3] == 0 and s["miou"] == pytest.approx(2 / 21)


# ---------------------------------------------------------------- Cityscapes

from psp_torch.datasets.cityscapes import DATASET as CITYSCAPES                 # noqa: E402
from psp_torch.datasets.cityscapes import LUT as CITYSCAPES_LUT                 # noqa: E402
from psp_torch.datasets.cityscapes import SCHEME as CITYSCAPES_SCHEME           # noqa: E402
from pspnet_caffe.eval.metrics import FIXED, cityscapes_scores                  # noqa: E402

A_PERSON, A_CAR = CITYSCAPES_SCHEME.avg_size[11], CITYSCAPES_SCHEME.avg_size[13]


def _tiny_cityscapes():
    """Rows (trainIds): person x4 (two instances), car x4 (one instance), road x4, ignored x4."""
    lab = np.array([[11] * 4, [13] * 4, [0] * 4, [255] * 4], np.uint8)
    inst = np.full((4, 4), -1)
    inst[0, :2], inst[0, 2:], inst[1] = 11000, 11001, 13000
    pred = np.array([[11, 11, 11, 12], [13, 14, 0, 0], [0, 0, 13, 0], [11, 13, 5, 5]])
    return pred, lab, inst


def test_cityscapes_scores_hand_computed():
    pred, lab, inst = _tiny_cityscapes()
    st = image_stats(pred, lab, 19, inst, CITYSCAPES_SCHEME)
    cs = cityscapes_scores(st, CITYSCAPES_SCHEME)
    iou = [c["iou"] for c in cs["classes"]]
    # road 3/(3+2+1), person 3/(3+0+1), rider 0/1, car 1/(1+1+3), truck 0/1, others undefined
    assert iou[0] == 0.5 and iou[11] == 0.75 and iou[12] == 0 and iou[13] == 0.2 and iou[14] == 0
    assert all(np.isnan(iou[k]) for k in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 18))
    assert cs["iou_class"] == pytest.approx((0.5 + 0.75 + 0 + 0.2 + 0) / 5)
    # person: instance A (2 px, 2 hit) and B (2 px, 1 hit): TP_w = 1.5 a, FN_w = 0.5 a, FP 0
    iiou = {k: cs["classes"][k]["iiou"] for k in range(19)}
    car = (A_CAR / 4) / (A_CAR / 4 + 1 + 3 * A_CAR / 4)              # 1 of 4 px hit, FP 1
    assert iiou[11] == pytest.approx(0.75, abs=1e-12) and iiou[12] == 0 and iiou[14] == 0
    assert iiou[13] == pytest.approx(car, rel=1e-12)
    assert all(np.isnan(iiou[k]) for k in (15, 16, 17, 18)) and iiou[0] is None
    assert cs["iiou_class"] == pytest.approx((0.75 + 0 + car + 0) / 4, rel=1e-12)
    cats = {c["name"]: c for c in cs["categories"]}
    # flat 3/(3+2+1); human 4/4 (rider counts for person); vehicle 2/(2+1+2); the rest undefined
    assert cats["flat"]["iou"] == 0.5 and cats["human"]["iou"] == 1 and cats["vehicle"]["iou"] == 0.4
    assert np.isnan(cats["object"]["iou"])                     # only on ignored pixels
    assert cs["iou_category"] == pytest.approx((0.5 + 1 + 0.4) / 3)
    vehicle = (A_CAR / 2) / (A_CAR / 2 + 1 + A_CAR / 2)            # car and truck both vehicle
    assert cats["human"]["iiou"] == pytest.approx(1, abs=1e-12)
    assert cats["vehicle"]["iiou"] == pytest.approx(vehicle, rel=1e-12)
    assert cats["flat"]["iiou"] is None                        # no instances in flat
    assert cs["iiou_category"] == pytest.approx((1 + vehicle) / 2, rel=1e-12)
    # weighted counts are integers in 2^-32 px: the person's TP_w is exactly 1.5 * its average
    assert st.inst_tp[11] == round(2 * (A_PERSON / 2) * FIXED) + round(A_PERSON / 2 * FIXED)


# The official evalPixelLevelSemanticLabeling.py, transcribed on labelIds for the cross-check.
_IGNORED = {0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30}
_CATEGORY = {**{i: "void" for i in range(7)}, **{i: "flat" for i in range(7, 11)},
             **{i: "construction" for i in range(11, 17)}, **{i: "object" for i in range(17, 21)},
             21: "nature", 22: "nature", 23: "sky", 24: "human", 25: "human",
             **{i: "vehicle" for i in range(26, 34)}}
_HAS_INSTANCES = set(range(24, 34))
_AVG = {24: 3462.4756337644, 25: 3930.4788056518, 26: 12794.0202738185, 27: 27855.1264367816,
        28: 35732.1511111111, 29: 36771.8241758242, 30: 16926.9763313609, 31: 67583.7075812274,
        32: 6298.7200839748, 33: 4672.3249222261}


def _official(preds, gts, insts):
    conf = np.zeros((34, 34), np.int64)
    inst_cls = {i: [0.0, 0.0] for i in _HAS_INSTANCES - _IGNORED}
    inst_cat = {"human": [0.0, 0.0], "vehicle": [0.0, 0.0]}
    cat_ids = {"human": [24, 25], "vehicle": list(range(26, 34))}
    for pred, gt, inst in zip(preds, gts, insts):
        np.add.at(conf, (gt.ravel(), pred.ravel()), 1)
        for iid in np.unique(inst[inst > 1000]):
            lid = int(iid / 1000)
            if lid in _IGNORED:
                continue
            mask = inst == iid
            size = np.count_nonzero(mask)
            tp = np.count_nonzero(pred[mask] == lid)
            w = _AVG[lid] / float(size)
            inst_cls[lid][0] += tp * w
            inst_cls[lid][1] += (size - tp) * w
            ctp = np.count_nonzero(mask & np.isin(pred, cat_ids[_CATEGORY[lid]]))
            inst_cat[_CATEGORY[lid]][0] += ctp * w
            inst_cat[_CATEGORY[lid]][1] += (size - ctp) * w
    evald = [i for i in range(34) if i not in _IGNORED]

    def ratio(tp, fp, fn):
        return float(tp) / (tp + fp + fn) if tp + fp + fn else float("nan")

    cls_iou, cls_iiou = {}, {}
    for i in evald:
        fp = conf[[l for l in evald if l != i], i].sum()
        tp, fn = conf[i, i], conf[i].sum() - conf[i, i]
        cls_iou[i] = ratio(tp, fp, fn)
        cls_iiou[i] = ratio(inst_cls[i][0], fp, inst_cls[i][1]) if i in inst_cls else np.nan
    cat_iou, cat_iiou = {}, {}
    for cat in ("flat", "construction", "object", "nature", "sky", "human", "vehicle"):
        ids = [i for i in evald if _CATEGORY[i] == cat]
        tp = conf[np.ix_(ids, ids)].sum()
        fn = conf[ids].sum() - tp
        fp = conf[np.ix_([i for i in evald if _CATEGORY[i] != cat], ids)].sum()
        cat_iou[cat] = ratio(tp, fp, fn)
        if cat in inst_cat:
            fp_all = conf[np.ix_([i for i in evald if _CATEGORY[i] != cat], cat_ids[cat])].sum()
            cat_iiou[cat] = ratio(inst_cat[cat][0], fp_all, inst_cat[cat][1])
    avg = lambda d: np.nanmean(list(d.values()))
    return cls_iou, cls_iiou, cat_iou, cat_iiou, [avg(cls_iou), avg(cls_iiou), avg(cat_iou),
                                                  avg(cat_iiou)]


def _random_cityscapes(rng, h=24, w=30):
    gt = rng.choice(34, (h, w)).astype(np.uint8)
    gt[rng.random((h, w)) < 0.5] = rng.choice([7, 24, 26, 29])   # big regions of a few ids
    inst = gt.astype(np.int64).copy()
    for lid in _HAS_INSTANCES:
        ys, xs = np.nonzero(gt == lid)
        k = rng.integers(0, 3, ys.size)                            # instances 0, 1 and crowd
        inst[ys, xs] = np.where(k < 2, lid * 1000 + k, lid)
    train = [k for k, v in enumerate(CITYSCAPES_LUT) if v != 255]
    pred = rng.choice(train, (h, w)).astype(np.uint8)
    near = rng.random((h, w)) < 0.6
    pred[near & (CITYSCAPES_LUT[gt] != 255)] = gt[near & (CITYSCAPES_LUT[gt] != 255)]
    return pred, gt, inst


def test_cityscapes_scores_equal_the_official_script_transcribed():
    rng = np.random.default_rng(11)
    preds, gts, insts = zip(*[_random_cityscapes(rng) for _ in range(4)])
    st = Stats(19)
    for p, g, i in zip(preds, gts, insts):
        st.add(image_stats(CITYSCAPES_LUT[p].astype(np.int64), CITYSCAPES_LUT[g], 19,
                           CITYSCAPES.decode_instances(i), CITYSCAPES_SCHEME))
    cs = cityscapes_scores(st, CITYSCAPES_SCHEME)
    cls_iou, cls_iiou, cat_iou, cat_iiou, averages = _official(preds, gts, insts)
    inverse = {v: k for k, v in enumerate(CITYSCAPES_LUT) if v != 255}
    for c in range(19):
        assert cs["classes"][c]["iou"] == pytest.approx(cls_iou[inverse[c]], rel=1e-12)
        if c in CITYSCAPES_SCHEME.avg_size:
            assert cs["classes"][c]["iiou"] == pytest.approx(cls_iiou[inverse[c]], rel=1e-12)
    for cat in cs["categories"]:
        assert cat["iou"] == pytest.approx(cat_iou[cat["name"]], rel=1e-12, nan_ok=True)
        if cat["iiou"] is not None:
            assert cat["iiou"] == pytest.approx(cat_iiou[cat["name"]], rel=1e-12)
    assert set(cat_iiou) == {c["name"] for c in cs["categories"] if c["iiou"] is not None}
    ours = [cs["iou_class"], cs["iiou_class"], cs["iou_category"], cs["iiou_category"]]
    assert ours == pytest.approx(averages, rel=1e-12)
    assert cs["iou_class"] == pytest.approx(cityscapes_miou(st), rel=1e-15)
    assert 0 < cs["iiou_class"] < 1 and st.inst_tp.sum() > 0


def test_cityscapes_instance_counts_sum_exactly_over_shards():
    rng = np.random.default_rng(12)
    parts = []
    for _ in range(3):
        p, g, i = _random_cityscapes(rng)
        parts.append(image_stats(CITYSCAPES_LUT[p].astype(np.int64), CITYSCAPES_LUT[g], 19,
                                 CITYSCAPES.decode_instances(i), CITYSCAPES_SCHEME))
    fwd, back = Stats(19), Stats(19)
    for s in parts:
        fwd.add(s)
    for s in reversed(parts):
        back.add(Stats.from_vector(s.to_vector(), 19))
    assert np.array_equal(fwd.to_vector(), back.to_vector())
    assert fwd.instance_images == 3


def test_cityscapes_without_instance_maps_reports_no_iiou():
    pred, lab, inst = _tiny_cityscapes()
    st = image_stats(pred, lab, 19, inst, CITYSCAPES_SCHEME)
    st.add(image_stats(pred, lab, 19))                       # a second image without instances
    cs = cityscapes_scores(st, CITYSCAPES_SCHEME)
    assert cs["iiou_class"] is None and cs["iiou_category"] is None
    assert all(c["iiou"] is None for c in cs["classes"] + cs["categories"])
    assert cs["iou_class"] == pytest.approx((0.5 + 0.75 + 0 + 0.2 + 0) / 5)


def test_instance_decoding_follows_the_official_threshold():
    raw = np.array([[24000, 24001, 24, 26005], [29000, 1000, 1001, 33002]])
    keys = CITYSCAPES.decode_instances(raw)
    # person 0 and 1 (trainId 11), a person crowd region (< 1000), car 5, caravan dropped
    # (ignored in evaluation), 1000 and 1001 (ego vehicle) dropped, bicycle 2
    assert keys.tolist() == [[11000, 11001, -1, 13005], [-1, -1, -1, 18002]]
