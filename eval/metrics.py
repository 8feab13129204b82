"""Scoring: a confusion matrix per image, summed over the split, and the scores read from it.

Per image, with labels 0..C-1 and 255 ignored, predictions 0..C-1 or 255 ("no class": a
prediction PNG from elsewhere holding the dataset's unlabelled id, e.g. ADE20K 0 "other" or a
Cityscapes void id):
- only labelled pixels count (label != 255); predictions on ignored pixels count nowhere;
- ``confusion[l, p]`` counts labelled pixels of label l predicted p; column C holds the
  labelled pixels predicted "no class": they are misses of their label, false positives of none
  (as the scene-parsing toolkit's histogram bin 0 and the Cityscapes script's void columns).
- intersection_c = confusion[c, c]; union_c = (row c) + (column c) - intersection_c;
  correct = the diagonal; labelled = every entry.

Over the split (int64 sums), as the scene-parsing toolkit's intersectionAndUnion.m /
pixelAccuracy.m (which the authors' eval_acc.m calls):
``IoU_c = sum I_c / sum_images (eps + U_c)`` i.e. ``I_c / (U_c + n_images * eps)`` with
MATLAB's eps = 2^-52 (a class absent from labels and predictions scores 0 and still counts in
the mean), ``mIoU = mean over all C classes``, ``pixel accuracy = sum correct / sum labelled``.
Not eval_acc.m's ``imAnno + 1``, which misaligns ADE20K's 1-based annotations (eval/README.md).
The VOC devkit would give NaN for a class absent from labels and predictions (0/0), and so a
NaN mean; here it scores 0.

Cityscapes (``cityscapes_scores``): the official evalPixelLevelSemanticLabeling.py scores
IoU and instance-weighted iIoU per class and per category, each averaged over the entries
where it is defined (denominator > 0). Instances come from gtFine_instanceIds; an instance of
class c with s pixels, of which tp are predicted c, adds ``tp * w`` to TP_w and
``(s - tp) * w`` to FN_w with ``w = avg_size[c] / s``; for its category, tp counts the pixels
predicted any class of that category. iIoU = TP_w / (TP_w + FP + FN_w), FP unweighted.
Weighted sums are kept as int64 in units of 2^-32 pixel (each instance's float64 term rounded
once), so that sums over ranks are exact and any order gives the same file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from psp_torch.datasets.base import IGNORE, INSTANCE_KEY, InstanceScheme

MATLAB_EPS = float(np.finfo(np.float64).eps)  # 2.220446049250313e-16
FIXED = 2.0 ** 32  # weighted instance counts: int64 in units of 2^-32 pixel


@dataclass
class Stats:
    """Integer statistics of a set of images; add them, all-reduce them as one vector."""
    num_classes: int
    confusion: np.ndarray = field(default=None)    # (C, C + 1) int64
    images: int = 0
    instance_images: int = 0                       # images whose instance map was scored
    inst_tp: np.ndarray = field(default=None)      # (C,) int64, 2^-32 px: weighted TP per class
    inst_fn: np.ndarray = field(default=None)      # weighted FN per class
    inst_cat_tp: np.ndarray = field(default=None)  # weighted TP of the class's category
    inst_cat_fn: np.ndarray = field(default=None)

    _INST = ("inst_tp", "inst_fn", "inst_cat_tp", "inst_cat_fn")

    def __post_init__(self):
        c = self.num_classes
        if self.confusion is None:
            self.confusion = np.zeros((c, c + 1), np.int64)
        for name in self._INST:
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(c, np.int64))

    @property
    def intersection(self) -> np.ndarray:
        return np.diagonal(self.confusion).copy()

    @property
    def label_area(self) -> np.ndarray:
        return self.confusion.sum(1)

    @property
    def pred_area(self) -> np.ndarray:
        return self.confusion[:, :-1].sum(0)

    @property
    def union(self) -> np.ndarray:
        return self.label_area + self.pred_area - self.intersection

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def labelled(self) -> int:
        return int(self.confusion.sum())

    def add(self, other: "Stats") -> "Stats":
        self.confusion += other.confusion
        self.images += other.images
        self.instance_images += other.instance_images
        for name in self._INST:
            getattr(self, name).__iadd__(getattr(other, name))
        return self

    def to_vector(self) -> np.ndarray:
        return np.concatenate([self.confusion.ravel(), [self.images, self.instance_images]]
                              + [getattr(self, n) for n in self._INST]).astype(np.int64)

    @classmethod
    def from_vector(cls, v: np.ndarray, num_classes: int) -> "Stats":
        c = num_classes
        v = np.asarray(v, np.int64)
        n = c * (c + 1)
        inst = [v[n + 2 + k * c: n + 2 + (k + 1) * c].copy() for k in range(4)]
        return cls(c, v[:n].reshape(c, c + 1).copy(), int(v[n]), int(v[n + 1]), *inst)


def image_stats(pred: np.ndarray, label: np.ndarray, num_classes: int,
                instances: np.ndarray | None = None,
                scheme: InstanceScheme | None = None) -> Stats:
    """One image's statistics (pred: class ids or 255; label: class ids or 255).

    instances: (H, W) int map, class * 1000 + instance number, -1 = no instance (with scheme).
    """
    if pred.shape != label.shape:
        raise ValueError(f"prediction {pred.shape} and label {label.shape} differ in size")
    if instances is not None and instances.shape != label.shape:
        raise ValueError(f"instance map {instances.shape} and label {label.shape} differ in size")
    c = num_classes
    pred = pred.astype(np.int64).ravel()
    label = label.astype(np.int64).ravel()
    valid = label != IGNORE
    if np.any(label[valid] >= c) or np.any(label[valid] < 0):
        raise ValueError(f"label values outside 0..{c - 1} and {IGNORE}")
    if np.any(((pred < 0) | (pred >= c)) & (pred != IGNORE)):
        raise ValueError(f"prediction values outside 0..{c - 1} and {IGNORE} (no class)")
    p = np.where(pred[valid] == IGNORE, c, pred[valid])
    conf = np.bincount(label[valid] * (c + 1) + p, minlength=c * (c + 1)).reshape(c, c + 1)
    st = Stats(c, conf.astype(np.int64), 1)
    if instances is not None:
        _add_instances(st, pred, instances.astype(np.int64).ravel(), scheme)
    return st


def _add_instances(st: Stats, pred: np.ndarray, inst: np.ndarray, scheme: InstanceScheme):
    """evaluatePair's instance loop: weighted TP / FN per instance, summed per class."""
    st.instance_images = 1
    sel = inst >= 0
    if not sel.any():
        return
    keys, inv = np.unique(inst[sel], return_inverse=True)
    cls = keys // INSTANCE_KEY
    known = np.isin(cls, list(scheme.avg_size))
    p = pred[sel]
    size = np.bincount(inv, minlength=keys.size)
    tp = np.bincount(inv[p == cls[inv]], minlength=keys.size)
    cat = scheme.category_of(st.num_classes)
    cat_tp = np.bincount(inv[(cat[p] == cat[cls[inv]]) & (cat[cls[inv]] >= 0)],
                         minlength=keys.size)
    avg = np.array([scheme.avg_size.get(int(k), 0.0) for k in cls], np.float64)
    weight = avg / size.astype(np.float64)
    for name, count in (("inst_tp", tp), ("inst_fn", size - tp),
                        ("inst_cat_tp", cat_tp), ("inst_cat_fn", size - cat_tp)):
        terms = np.rint(count.astype(np.float64) * weight * FIXED).astype(np.int64)
        np.add.at(getattr(st, name), cls[known], terms[known])


def iou(stats: Stats) -> np.ndarray:
    """Per-class IoU as intersectionAndUnion.m summed: sum(I) ./ sum(eps + U) over the images."""
    return stats.intersection / (stats.union + stats.images * MATLAB_EPS)


def summary(stats: Stats) -> dict:
    per_class = iou(stats)
    return {
        "iou": per_class.tolist(),
        "miou": float(per_class.mean()),
        "pixel_acc": float(stats.correct / stats.labelled) if stats.labelled else float("nan"),
    }


def cityscapes_miou(stats: Stats) -> float:
    """The Cityscapes script's IoU class: TP / (TP + FP + FN) over classes where defined."""
    present = stats.union > 0
    if not present.any():
        return float("nan")
    return float((stats.intersection[present] / stats.union[present]).mean())


def _ratio(tp, fp, fn) -> float:
    denom = tp + fp + fn
    return float(tp) / denom if denom != 0 else float("nan")


def _mean_defined(values) -> float:
    ok = [v for v in values if not np.isnan(v)]
    return sum(ok) / len(ok) if ok else float("nan")


def cityscapes_scores(stats: Stats, scheme: InstanceScheme) -> dict:
    """IoU / iIoU per class and per category, and their averages, as evalPixelLevelSemantic-
    Labeling.py computes them (NaN where undefined; iIoU None without instance maps)."""
    conf = stats.confusion
    c = stats.num_classes
    with_instances = stats.images > 0 and stats.instance_images == stats.images
    tp, fp, fn = stats.intersection, stats.pred_area - stats.intersection, \
        stats.label_area - stats.intersection
    iou_class = [_ratio(tp[k], fp[k], fn[k]) for k in range(c)]
    iiou_class = {k: _ratio(stats.inst_tp[k] / FIXED, fp[k], stats.inst_fn[k] / FIXED)
                  for k in sorted(scheme.avg_size)}
    cats, inst_cats = [], set(scheme.instance_categories())
    for k, (name, ids) in enumerate(scheme.categories):
        ids = list(ids)
        others = [i for i in range(c) if i not in ids]
        ctp = int(conf[np.ix_(ids, ids)].sum())
        cfn = int(conf[ids].sum()) - ctp
        cfp = int(conf[np.ix_(others, ids)].sum())
        entry = {"name": name, "iou": _ratio(ctp, cfp, cfn), "iiou": None}
        if k in inst_cats:
            entry["iiou"] = _ratio(stats.inst_cat_tp[ids].sum() / FIXED, cfp,
                                   stats.inst_cat_fn[ids].sum() / FIXED)
        cats.append(entry)
    res = {
        "iou_class": _mean_defined(iou_class),
        "iiou_class": _mean_defined(iiou_class.values()) if with_instances else None,
        "iou_category": _mean_defined([e["iou"] for e in cats]),
        "iiou_category": (_mean_defined([e["iiou"] for e in cats if e["iiou"] is not None])
                          if with_instances else None),
        "classes": [{"iou": iou_class[k],
                     "iiou": iiou_class.get(k) if with_instances else None} for k in range(c)],
        "categories": cats,
        "instance_images": stats.instance_images,
    }
    if not with_instances:
        for e in cats:
            e["iiou"] = None
    return res
