"""The evaluation report (eval/html_report.py, eval/figures.py, eval/image_scores.py): the
files beside results.json, what they hold, the escaping of names from files, and (where
Chromium is installed) that report.html renders with its pictures."""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from pspnet_caffe.eval import figures, html_report
from pspnet_caffe.eval import run as eval_run
from pspnet_caffe.eval.image_scores import ImageScores, image_miou
from pspnet_caffe.eval.metrics import Stats, image_stats
from pspnet_caffe.eval.outputs import REPORT_FILES, Writer

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "samples"
SMALL = ("--base-size", "160", "--crop-size", "161")    # a fast protocol: small windows
HOSTILE = '<script>alert("x")</script>&\x1b[2J'


def _voc_run(out: Path, *extra) -> str:
    argv = ["--model", "standin:voc", "--dataset", "voc", "--split", "val",
            "--data-root", SAMPLES, "--out", out, "--workers", "0", *SMALL, *extra]
    assert eval_run.main([str(a) for a in argv]) == 0
    return (out / "report.html").read_text()


@pytest.fixture(scope="module")
def voc_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "out"
    return out, _voc_run(out)


# ---------------------------------------------------------------- per-image scores

def test_image_miou_averages_the_classes_present_only():
    label = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 0, 0, 1]])
    st = image_stats(pred, label, num_classes=5)
    # class 0: I 2, U 3; class 1: I 1, U 2; classes 2..4 absent: not counted
    assert image_miou(st) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert image_miou(Stats(5)) is None


def test_worst_images_lowest_miou_first_unscored_never():
    scores = ImageScores(4)
    good = image_stats(np.array([[1, 1]]), np.array([[1, 1]]), 3)
    bad = image_stats(np.array([[0, 2]]), np.array([[1, 1]]), 3)
    half = image_stats(np.array([[1, 2]]), np.array([[1, 1]]), 3)
    for i, st in ((0, good), (1, bad), (3, half)):      # position 2: no labelled pixel
        scores.add(i, st)
    scores.add(2, image_stats(np.array([[1]]), np.array([[255]]), 3))
    assert [s.index for s in scores.worst(10)] == [1, 3, 0]
    assert [s.index for s in scores.worst(1)] == [1]
    assert scores.worst(10)[0].miou == 0.0 and scores.worst(10)[2].pixel_acc == 1.0


# ---------------------------------------------------------------- pictures

def test_confusion_image_rows_normalised_empty_rows_grey():
    conf = np.zeros((150, 151), np.int64)
    conf[3, 3] = 500                                     # all of class 3 right: share 1
    conf[7, 9], conf[7, 7] = 30, 10                      # class 7: 3/4 to class 9
    img = figures.confusion_image(conf, [f"c{i}" for i in range(150)])
    assert img.shape[0] > 1000 and img.shape[1] > 1000   # readable at 150 classes: a big PNG
    three_quarters = np.round(255 - 0.75 * (255 - figures.HIGH))
    for colour, cells in ((figures.HIGH, 1), (figures.EMPTY_ROW, 148 * 151),
                          (three_quarters, 1)):
        assert _pixels(img, colour) >= cells * 25            # cells of at least 6 px


def _pixels(img: np.ndarray, colour) -> int:
    return int((img == np.asarray(colour, np.uint8)).all(-1).sum())


def test_legend_has_every_class_colour():
    palette = np.array([[255, 0, 0], [0, 200, 0], [1, 2, 250], [9, 9, 9]], np.uint8)
    img = figures.legend_image(["a", "b", HOSTILE, "d" * 500], palette)
    assert all(_pixels(img, c) >= 100 for c in palette)       # a swatch of each


def test_names_drawn_as_short_printable_ascii():
    t = figures.label_text("caf\u00e9\x1b[2J" + "x" * 100)
    assert t.isascii() and t.isprintable() and len(t) == figures.NAME_CHARS and t.endswith("~")
    assert "\\x1b" in t


def test_iou_chart_escapes_names_and_orders_best_first():
    svg = figures.iou_svg(["low", HOSTILE, "high"], [0.1, float("nan"), 0.9],
                          np.zeros((3, 3), np.uint8))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "\x1b" not in svg
    assert svg.index(">2 high<") < svg.index(">0 low<") < svg.index("1 &lt;script")


def test_panels_side_by_side_ignored_pixels_marked():
    image = np.full((40, 1000, 3), 200, np.uint8)
    label = np.zeros((40, 1000), np.uint8)
    label[:, :10] = 255
    pred = np.ones((40, 1000), np.uint8)
    palette = np.array([[0, 255, 0], [255, 0, 0]], np.uint8)
    out = figures.panels(image, pred, label, palette)
    w = figures.PANEL_WIDTH
    assert out.shape[1] == 3 * w + 12                    # each panel shrunk to PANEL_WIDTH
    body = out[22:]
    assert tuple(body[5, w + 6 + 100]) == (228, 100, 100)       # half image, half red
    assert tuple(body[5, 2 * (w + 6) + 1]) == figures.IGNORED
    assert tuple(body[5, 2 * (w + 6) + 100]) == (0, 255, 0)


# ---------------------------------------------------------------- the run's report

def test_report_files_beside_results(voc_report):
    out, page = voc_report
    res = json.loads((out / "results.json").read_text())
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    conf = np.load(out / "confusion.npy", allow_pickle=False)
    assert conf.dtype == np.int64 and conf.shape == (21, 22)
    assert conf.sum() == res["labelled"] and np.trace(conf) == res["correct"]
    assert [int(conf[i, i]) for i in range(21)] == [c["intersection"] for c in res["classes"]]
    rows = list(csv.reader((out / "confusion.csv").read_text().splitlines()))
    assert rows[0] == ["label \\ prediction"] + [c["name"] for c in res["classes"]] + \
        ["(no class)"]
    assert rows[16][0] == "person" and [int(v) for v in rows[16][1:]] == conf[15].tolist()
    assert sorted(p.name for p in (out / "worst").iterdir()) == ["01.png", "02.png"]
    assert cv2.imread(str(out / "worst" / "01.png")).shape[1] == 3 * figures.PANEL_WIDTH + 12


def test_report_links_are_relative_and_resolve(voc_report):
    out, page = voc_report
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert {"confusion.png", "legend.png", "worst/01.png", "worst/02.png", "results.json",
            "confusion.csv"} <= set(links)
    for link in links:
        assert "://" not in link and not link.startswith("/")
        assert (out / link).is_file(), link
    assert "<script" not in page.lower() and page.count("<svg") == 1


def _copy(voc_report, tmp_path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(voc_report[0], out)
    return out


def test_worst_images_replaced_by_a_later_report(voc_report, tmp_path):
    out = _copy(voc_report, tmp_path)                    # --resume: no network runs
    page = _voc_run(out, "--worst", "1", "--resume")
    assert [p.name for p in (out / "worst").iterdir()] == ["01.png"]
    assert "worst/02.png" not in page
    mine = out / "worst" / "notes.png"                   # not a report file: left alone
    mine.write_bytes(b"x")
    _voc_run(out, "--worst", "0", "--resume")
    assert [p.name for p in (out / "worst").iterdir()] == ["notes.png"]


def test_another_runs_report_is_removed_with_its_outputs(voc_report, tmp_path):
    out = _copy(voc_report, tmp_path)
    writer = Writer(out, "voc", "val")            # what claim() removes of a run of ours
    assert writer.remove_results() >= len(REPORT_FILES) + 2 + 2   # report, worst, results
    assert not any((out / n).exists() for n in REPORT_FILES)
    assert not list((out / "worst").glob("*.png"))


def test_report_path_only_names_report_files(tmp_path):
    w = Writer(tmp_path, "voc")
    assert w.report_path("worst/07.png") == tmp_path / "worst" / "07.png"
    for bad in ("../x.html", "worst/../../x.png", "results.json", "worst/a.png"):
        with pytest.raises(ValueError):
            w.report_path(bad)


def test_names_from_files_are_escaped_in_the_page(tmp_path):
    """Class names of one's own dataset (a names file) and image names (a list file) come
    from strangers: the page shows them as text."""
    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(SAMPLES / "VOC2012" / "JPEGImages" / "2007_000033.jpg", root / "a.jpg")
    label = np.zeros((366, 500), np.uint8)
    label[100:] = 1
    cv2.imwrite(str(root / "a.png"), label)
    odd = root / "<b>img&.jpg"
    shutil.copy(root / "a.jpg", odd)
    (root / "list.txt").write_text(f"a.jpg a.png\n{odd.name} a.png\n")
    (tmp_path / "names.txt").write_text("\n".join([HOSTILE, "two"] + [f"c{i}" for i in
                                                                       range(2, 21)]) + "\n")
    out = tmp_path / "out"
    argv = ["--model", "standin:voc", "--list", root / "list.txt",
            "--num-classes", "21", "--class-names", tmp_path / "names.txt", "--data-root", root,
            "--out", out, "--workers", "0", *SMALL]
    assert eval_run.main([str(a) for a in argv]) == 0
    page = (out / "report.html").read_text()
    assert "<script>" not in page and "<b>" not in page and "\x1b" not in page
    assert "&lt;script&gt;" in page and "&lt;b&gt;img&amp;" in page
    header = next(csv.reader((out / "confusion.csv").read_text().splitlines()))
    assert header[1] == HOSTILE                          # the data file keeps the name as is


# ---------------------------------------------------------------- in a browser

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(_chromium() is None, reason="no Chromium / Chrome on this machine: the "
                    "screenshot check of report.html needs a headless browser")
def test_report_renders_in_headless_chromium(voc_report, tmp_path):
    out, _ = voc_report
    shot = tmp_path / "shot.png"
    r = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", "--force-device-scale-factor=1",
                        "--window-size=1400,4000", f"--screenshot={shot}",
                        (out / "report.html").as_uri()],
                       capture_output=True, text=True, timeout=120)   # only against a hang
    assert shot.is_file(), r.stderr[-2000:]
    img = cv2.imread(str(shot))[:, :, ::-1].astype(int)
    # the heatmap's colour bar ends in HIGH: confusion.png was found and drawn
    near = np.abs(img - figures.HIGH.astype(int)).max(-1) <= 3
    assert near.sum() > 50
    # the worst images' panels: the VOC "person" colour (15) of the ground truth
    person = np.array([192, 128, 128])
    assert (np.abs(img - person).max(-1) <= 3).sum() > 1000
