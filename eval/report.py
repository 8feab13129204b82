"""The run's summary: per-class table, results.json / results.csv, and the verdict against the
published numbers (tolerance 0.1 points, only for the full split with default settings).

A dataset with an instance scheme (`psp_torch.datasets`: Cityscapes) also gets its official
script's scores: results.json holds them under the scheme's name (``"cityscapes"``), with
``miou_<name>_script``; ``instance_scheme`` names that section."""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from caffe_proto.printable import printable
from psp_torch import datasets

from .metrics import Stats, cityscapes_miou, cityscapes_scores, summary
from .outputs import RESULTS_CSV, RESULTS_JSON, write_together

TOLERANCE = 0.1  # points (percent)


def verdict(miou: float | None, pixel_acc: float | None, reference, applies: str | None) -> str:
    """'PASS ...', 'FAIL ...' or 'NO REFERENCE (...)'.

    miou, pixel_acc: fractions; reference: presets.Published (percent) or None;
    applies: None when the reference applies, else the reason it does not.
    """
    if applies is not None or reference is None or miou is None:
        return f"NO REFERENCE ({applies or 'no published number for these settings'})"
    parts, ok = [], True
    for what, ours, ref in (("mIoU", miou, reference.miou),
                            ("pixel acc", pixel_acc, reference.pixel_acc)):
        if ref is None:
            continue
        ours_pct = 100 * ours if ours is not None and not math.isnan(ours) else float("nan")
        diff = ours_pct - ref
        good = abs(diff) <= TOLERANCE
        ok &= good
        parts.append(f"{what} {ours_pct:.2f} vs published {ref:.2f} ({diff:+.2f})")
    return ("PASS " if ok else "FAIL ") + "; ".join(parts) + f" [tolerance {TOLERANCE} points]"


def instance_scheme(dataset: str | None):
    """The dataset's `InstanceScheme` (None: no instance scores, or not a known dataset)."""
    known = datasets.registry()
    return known[dataset].instances if dataset in known else None


def build_results(stats: Stats, class_names, info: dict, reference, applies) -> dict:
    s = summary(stats)
    res = dict(info)
    res.update({
        "images_scored": stats.images,
        "miou": s["miou"],
        "pixel_acc": s["pixel_acc"],
        "classes": [{"id": i, "name": n, "iou": s["iou"][i],
                     "intersection": int(stats.intersection[i]), "union": int(stats.union[i])}
                    for i, n in enumerate(class_names)],
        "correct": stats.correct, "labelled": stats.labelled,
    })
    scheme = instance_scheme(info.get("dataset"))
    if scheme is not None:
        key = scheme.name
        res["instance_scheme"] = key
        res[f"miou_{key}_script"] = cityscapes_miou(stats)
        cs = cityscapes_scores(stats, scheme)
        for entry, scores in zip(res["classes"], cs.pop("classes")):
            entry[f"iou_{key}"], entry["iiou"] = scores["iou"], scores["iiou"]
        if cs["iiou_class"] is None:
            cs["iiou_missing"] = (f"{scheme.files} found for {cs['instance_images']} of "
                                  f"{stats.images} images")
        res[key] = cs
    res["reference"] = None if reference is None else {
        "miou": reference.miou, "pixel_acc": reference.pixel_acc}
    res["verdict"] = verdict(s["miou"], s["pixel_acc"], reference, applies)
    return res


def softmax_summary(counts, mode: str) -> tuple[dict, str | None]:
    """results.json's "softmax" entry and the warning line (None when nothing happened).

    counts: protocol.SoftmaxCounts summed over the run."""
    info = {"mode": mode, "matlab_nan_pixels": counts.nan_pixels,
            "matlab_altered_pixels": counts.altered_pixels, "images_affected": counts.images,
            "images_checked": counts.checked}
    if counts.nan_pixels == 0 and counts.altered_pixels == 0:
        return info, None
    what = ("this run reproduces them (--softmax matlab)" if mode == "matlab" else
            "this run (--softmax stable) does not; --softmax matlab reproduces them")
    return info, (f"warning: MATLAB's float32 exp(score) softmax overflows in "
                  f"{counts.images} image(s): {counts.nan_pixels} pixel(s) NaN (MATLAB's max "
                  f"picks class 1 there), {counts.altered_pixels} altered; {what} "
                  f"(eval/README.md, 'The softmax')")


def table(res: dict) -> str:
    lines = [f"{'id':>3} {'class':<22} {'IoU':>7}"]
    for c in res["classes"]:
        lines.append(f"{c['id']:>3} {printable(c['name']):<22} {100 * c['iou']:7.2f}")
    lines.append(f"mIoU over {len(res['classes'])} classes: {100 * res['miou']:.2f}")
    key = res.get("instance_scheme")
    if key is not None:
        lines.append(f"mIoU ({key.capitalize()} script, present classes): "
                     f"{100 * res[f'miou_{key}_script']:.2f}")
    lines.append(f"pixel accuracy: {100 * res['pixel_acc']:.2f}")
    if key is not None:
        lines.append(_script_table(res, key))
    return "\n".join(lines)


def _pct(x) -> str:
    return "    n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else \
        f"{100 * x:7.2f}"


def _script_table(res: dict, key: str) -> str:
    """The official script's two tables: classes and categories, IoU and iIoU."""
    cs = res[key]
    lines = ["", f"{key.capitalize():<26} {'IoU':>7} {'iIoU':>7}"]
    for c in res["classes"]:
        lines.append(f"{c['id']:>3} {printable(c['name']):<22} {_pct(c[f'iou_{key}'])} "
                     f"{_pct(c['iiou']) if c['iiou'] is not None else ''}")
    lines.append(f"{'Score average (classes)':<26} {_pct(cs['iou_class'])} "
                 f"{_pct(cs['iiou_class'])}")
    for cat in cs["categories"]:
        lines.append(f"    {cat['name']:<22} {_pct(cat['iou'])} "
                     f"{_pct(cat['iiou']) if cat['iiou'] is not None else ''}")
    lines.append(f"{'Score average (categories)':<26} {_pct(cs['iou_category'])} "
                 f"{_pct(cs['iiou_category'])}")
    if "iiou_missing" in cs:
        lines.append(f"iIoU not computed: {cs['iiou_missing']}")
    return "\n".join(lines)


def _clean(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def write_results(out: Path, res: dict) -> None:
    """results.csv and results.json, as one set (`outputs.write_together`: results.json
    last)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "class", "iou", "intersection", "union"])
    for c in res["classes"]:
        w.writerow([c["id"], c["name"], f"{c['iou']:.6f}", c["intersection"], c["union"]])
    w.writerow(["", "mIoU", f"{res['miou']:.6f}", "", ""])
    w.writerow(["", "pixel_acc", f"{res['pixel_acc']:.6f}", res["correct"], res["labelled"]])
    scheme = res.get("instance_scheme")
    for key in ("iou_class", "iiou_class", "iou_category", "iiou_category") if scheme else ():
        if res[scheme][key] is not None:
            w.writerow(["", f"{scheme}_{key}", f"{res[scheme][key]:.6f}", "", ""])
    write_together(Path(out), {RESULTS_CSV: buf.getvalue().encode(),
                               RESULTS_JSON: (json.dumps(_clean(res), indent=1)
                                              + "\n").encode()})
