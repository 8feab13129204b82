"""What a user looks at after a scored run: ``report.html`` beside results.json, and the files it
shows, all under the run's output folder (the names: `outputs.REPORT_FILES`, ``worst/NN.png``):

- ``confusion.npy``: the split's confusion matrix, int64 (C, C + 1): row = true class, column =
  predicted class, the last column the labelled pixels predicted "no class" (`metrics`);
- ``confusion.csv``: the same counts with the class names as header and row labels;
- ``confusion.png``: the matrix row-normalised, as a heatmap (`figures.confusion_image`);
- ``legend.png``: every class's colour and name (`figures.legend_image`);
- ``worst/NN.png``: the N images with the lowest per-image mIoU (`image_scores`): image |
  prediction overlay | ground truth (`figures.panels`), 01 the worst;
- ``report.html``: the scores, the per-class IoU chart (inline SVG), the heatmap, the legend
  and the worst images, tied together with relative links: it opens from the folder in any
  browser, with no server and no script.

Every file is written atomically (temporary file + rename); report.html last. Names from files
(class names, image names, the model's name) are escaped (html.escape) in the page.
"""
from __future__ import annotations

import csv
import html
import io
from pathlib import Path

import numpy as np

from caffe_proto.printable import printable
from psp_torch import datasets

from . import figures
from .image_scores import ImageScore
from .outputs import WORST_DIR, Writer, atomic_write_bytes

DEFAULT_WORST = 8
NO_CLASS = "(no class)"


def confusion_csv(confusion: np.ndarray, names) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["label \\ prediction", *names, NO_CLASS])
    for name, row in zip(names, np.asarray(confusion)):
        w.writerow([name, *(int(v) for v in row)])
    return buf.getvalue().encode()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def worst_name(rank: int) -> str:
    return f"{WORST_DIR}/{rank:02d}.png"


def _e(text, limit: int = 200) -> str:
    return html.escape(printable(text, limit=limit))


def _pct(x) -> str:
    return "n/a" if x is None or x != x else f"{100 * x:.2f}%"


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 2200px; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; }
th { background: #eee; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
figure { margin: 0 0 1.2em 0; } img { max-width: 100%; border: 1px solid #ccc; }
.verdict { font-weight: bold; } .scroll { overflow-x: auto; }
"""


def page(res: dict, chart_svg: str, worst: list[tuple[str, str, ImageScore]]) -> str:
    """report.html: `res` (results.json's dict), the IoU chart, [(file, image name, score)]."""
    facts = [("dataset", res.get("dataset")), ("split", res.get("split")),
             ("images scored", res.get("images_scored")), ("model", res.get("model")),
             ("model sha256", res.get("model_sha256")),
             ("mIoU", _pct(res.get("miou"))), ("pixel accuracy", _pct(res.get("pixel_acc")))]
    key = res.get("instance_scheme")
    if key:
        for k in ("iou_class", "iiou_class", "iou_category", "iiou_category"):
            facts.append((f"{key} {k.replace('_', ' ')}", _pct(res[key].get(k))))
    rows = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    title = f"{res.get('dataset')} {res.get('split')}: mIoU {_pct(res.get('miou'))}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{_e(title)}</h1>", f"<table>{rows}</table>",
           f'<p class="verdict">{_e(res.get("verdict", ""), 1000)}</p>',
           '<p>Numbers: <a href="results.json">results.json</a>, '
           '<a href="results.csv">results.csv</a>; confusion matrix: '
           '<a href="confusion.csv">confusion.csv</a>, <a href="confusion.npy">confusion.npy</a>'
           "</p>",
           "<h2>IoU per class</h2>", f'<div class="scroll">{chart_svg}</div>',
           "<h2>Confusion matrix</h2>",
           "<p>Row = true class, column = predicted class, each row divided by its labelled "
           "pixels (white 0, dark blue 1; grey: no labelled pixel of that class).</p>",
           '<div class="scroll"><a href="confusion.png"><img src="confusion.png" '
           'alt="confusion matrix, row-normalised" style="max-width:none"></a></div>',
           "<h2>Colours</h2>", '<img src="legend.png" alt="class colours">']
    if worst:
        out.append(f"<h2>The {len(worst)} worst images (lowest per-image mIoU)</h2>")
        out.append("<p>Per-image mIoU: over the classes in the image's labels or prediction. "
                   "Ground truth: cream (224, 224, 192) where not scored.</p>")
        for k, (file, name, s) in enumerate(worst, 1):
            out.append(f'<figure><a href="{file}"><img src="{file}" alt="{_e(name)}"></a>'
                       f"<figcaption>{k}. {_e(name)}: mIoU {_pct(s.miou)}, pixel accuracy "
                       f"{_pct(s.pixel_acc)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(writer: Writer, res: dict, confusion: np.ndarray, names, samples=(),
                 worst: list[ImageScore] = (), dataset: str | None = None) -> Path:
    """Every file of the report under `writer.out`; returns report.html's path.

    samples: the split's samples (positions as in `worst`); worst: the images to show, worst
    first (their prediction is read back from the run's label PNGs)."""
    names = list(names)
    palette = writer.facts.palette

    def put(name: str, data: bytes) -> Path:
        return atomic_write_bytes(writer.report_path(name), data)
    put("confusion.npy", npy_bytes(np.asarray(confusion, np.int64)))
    put("confusion.csv", confusion_csv(confusion, names))
    put("confusion.png", figures.png(figures.confusion_image(confusion, names)))
    put("legend.png", figures.png(figures.legend_image(names, palette)))
    for p in writer.worst_paths():           # an earlier report's: replaced, not mixed in
        p.unlink()
    shown = []
    for k, score in enumerate(worst, 1):
        s = samples[score.index]
        image = datasets.read_image(s.image)
        label = datasets.get(dataset or writer.dataset).read_ground_truth(s, len(names))[0]
        pred = writer.read_prediction(s.name)
        put(worst_name(k), figures.png(figures.panels(image, pred, label, palette)))
        shown.append((worst_name(k), s.name, score))
    chart = figures.iou_svg(names, [c["iou"] for c in res["classes"]], palette)
    return put("report.html", page(res, chart, shown).encode())
