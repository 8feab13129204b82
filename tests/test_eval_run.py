"""eval/run.py end to end on the samples: converted Caffe nets (the slim oracle VOC net and tiny
one-convolution nets), SS and MS, every output, --resume, missing files, --image, torchrun."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from caffe_proto import load_prototxt, save_caffemodel
from pspnet_caffe.converter.convert import convert
from pspnet_caffe.eval import run as eval_run
from pspnet_caffe.eval.report import TOLERANCE, verdict
from psp_torch import datasets
from psp_torch.datasets import MS_SCALES, Published
from psp_torch.presets import MEAN_RGB

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "samples"
SLIM_VOC = ROOT / "tests" / "data" / "oracle" / "nets" / "pspnet101_voc_slim"


def _tiny_caffe_net(folder: Path, classes: int, crop: int = 473, hot: float = 0.0,
                    name: str = "") -> Path:
    """A one-convolution Caffe net (8x8/s8 conv, Interp zoom 8), written and converted;
    `hot` is added to class 0's bias."""
    text = f'''name: "tiny_{classes}"
input: "data"
input_shape {{ dim: 1 dim: 3 dim: {crop} dim: {crop} }}
layer {{ name: "score" type: "Convolution" bottom: "data" top: "score"
  convolution_param {{ num_output: {classes} kernel_size: 8 stride: 8 pad: 4 }} }}
layer {{ name: "score_interp" type: "Interp" bottom: "score" top: "score_interp"
  interp_param {{ zoom_factor: 8 }} }}
'''
    stem = f"tiny{classes}{name}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.prototxt").write_text(text)
    net = load_prototxt(text)
    rng = np.random.RandomState(classes)
    bias = (rng.randn(classes) * 0.1).astype(np.float32)
    bias[0] += hot
    net.layers[0].blobs = [(rng.randn(classes, 3, 8, 8) * 1e-3).astype(np.float32), bias]
    save_caffemodel(net, folder / f"{stem}.caffemodel")
    return convert(folder / f"{stem}.caffemodel", folder / f"{stem}.prototxt",
                   out=folder / f"{stem}.pth", log=lambda *a: None)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    out = {n: _tiny_caffe_net(d, n) for n in (21, 150, 19)}
    out["hot150"] = _tiny_caffe_net(d, 150, hot=50.0, name="hot")   # image + mirror: 100
    out["slim_voc"] = convert(SLIM_VOC / "weights.caffemodel", SLIM_VOC / "deploy.prototxt",
                              out=d / "slim_voc.pth", log=lambda *a: None)
    return out


def _run(argv, capsys=None):
    rc = eval_run.main([str(a) for a in argv])
    assert rc == 0
    return capsys.readouterr().out if capsys else None


def _fail_if_called(*a, **k):
    raise AssertionError("the network ran although every image was finished")


# ---------------------------------------------------------------- end to end

def test_slim_voc_single_scale_every_output_then_resume(models, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    argv = ["--weights", models["slim_voc"], "--dataset", "voc", "--split", "val",
            "--data-root", SAMPLES, "--out", out, "--save-probs", "--workers", "1", "--batch", "4"]
    text = _run(argv, capsys)
    assert text.strip().splitlines()[-1].startswith("NO REFERENCE (2 images")
    res = json.loads((out / "results.json").read_text())
    assert res["images"] == res["images_scored"] == 2 and len(res["classes"]) == 21
    assert res["classes"][15]["name"] == "person" and res["settings"]["scales"] == [1.0]
    assert (out / "results.csv").read_text().startswith("id,class,iou")
    for name, shape in [("2007_000033", (366, 500)), ("2007_000129", (500, 334))]:
        lab = Image.open(out / "labels" / f"{name}.png")
        assert lab.mode == "P" and lab.size == shape[::-1]            # VOC palette PNG
        pred = np.array(lab)
        probs = np.load(out / "probs" / f"{name}.npy")
        assert probs.dtype == np.float32 and probs.shape == (21,) + shape
        assert np.allclose(probs.sum(0), 1, atol=1e-5)
        assert np.array_equal(probs.argmax(0), pred)
        colour = np.array(Image.open(out / "color" / f"{name}.png"))
        assert np.array_equal(colour, datasets.get("voc").palette[pred])
    # --resume: nothing runs, the scores are rebuilt from the saved PNGs
    monkeypatch.setattr(eval_run, "segment_counted", _fail_if_called)
    before = (out / "results.json").read_text()
    (out / "results.json").unlink()
    text = _run(argv + ["--resume"], capsys)
    assert "(2 resumed)" in text
    assert (out / "results.json").read_text() == before


def test_multi_scale_tiny_net(models, tmp_path, capsys):
    out = tmp_path / "ms"
    text = _run(["--weights", models[21], "--dataset", "voc", "--split", "val",
                 "--data-root", SAMPLES, "--ms", "--out", out, "--workers", "2", "--batch", "3",
                 "--limit", "1", "--softmax", "matlab"], capsys)
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["scales"] == list(MS_SCALES) and res["images"] == 1
    assert res["settings"]["softmax"] == "matlab" and res["softmax"]["matlab_nan_pixels"] == 0
    assert text.strip().splitlines()[-1] == "NO REFERENCE (--limit)"
    for name in ("2007_000033",):
        assert (out / "labels" / f"{name}.png").is_file()
        assert (out / "color" / f"{name}.png").is_file()


def test_ade20k_ids_are_one_based(models, tmp_path, capsys):
    out = tmp_path / "ade"
    _run(["--weights", models[150], "--dataset", "ade20k", "--data-root", SAMPLES,
          "--base-size", "160", "--crop-size", "161", "--out", out, "--workers", "0"], capsys)
    for i in (1, 2, 3):
        ids = np.array(Image.open(out / "labels" / f"ADE_val_0000000{i}.png"))
        assert ids.min() >= 1 and ids.max() <= 150
    res = json.loads((out / "results.json").read_text())
    assert res["softmax"] == {"mode": "stable", "matlab_nan_pixels": 0, "matlab_altered_pixels": 0,
                              "images_affected": 0, "images_checked": 3}
    # a prediction PNG from elsewhere with class 0 ("other"): scored as misses, not an error
    foreign = out / "labels" / "ADE_val_00000003.png"
    ids = np.array(Image.open(foreign))
    ids[:100] = 0
    Image.fromarray(ids).save(foreign)
    (out / "results.json").unlink()
    _run(["--weights", models[150], "--dataset", "ade20k", "--data-root", SAMPLES,
          "--base-size", "160", "--crop-size", "161", "--out", out, "--workers", "0",
          "--resume"], capsys)
    again = json.loads((out / "results.json").read_text())
    assert again["labelled"] == res["labelled"] and again["correct"] < res["correct"]
    assert again["softmax"]["images_checked"] == 2                  # the foreign PNG has no counts


def test_matlab_softmax_overflow_is_counted_and_reproduced(models, tmp_path, capsys):
    argv = ["--weights", models["hot150"], "--dataset", "ade20k", "--data-root", SAMPLES,
            "--base-size", "160", "--crop-size", "161", "--workers", "0", "--limit", "2"]
    _run(argv + ["--out", tmp_path / "s"])
    err = capsys.readouterr().err
    pixels = 683 * 512 + 500 * 364                                   # every pixel overflows
    assert "warning: MATLAB's float32 exp(score) softmax overflows in 2 image(s): " \
           f"{pixels} pixel(s) NaN" in err and "--softmax matlab reproduces them" in err
    stable = json.loads((tmp_path / "s/results.json").read_text())
    assert stable["softmax"]["matlab_nan_pixels"] == pixels
    _run(argv + ["--out", tmp_path / "m", "--softmax", "matlab", "--save-probs"])
    assert "this run reproduces them" in capsys.readouterr().err
    matlab = json.loads((tmp_path / "m/results.json").read_text())
    assert matlab["settings"]["softmax"] == "matlab" and matlab["softmax"] == dict(
        stable["softmax"], mode="matlab")
    probs = np.load(tmp_path / "m/probs/ADE_val_00000002.npy")
    assert np.isnan(probs).all()                                     # MATLAB: NaN everywhere
    ids = np.array(Image.open(tmp_path / "m/labels/ADE_val_00000002.png"))
    assert (ids == 1).all()                                          # max of all-NaN: index 1


def test_cityscapes_label_ids_out_and_script_miou(models, tmp_path, capsys):
    out = tmp_path / "cs"
    text = _run(["--weights", models[19], "--dataset", "cityscapes", "--data-root", SAMPLES,
          "--crop-size", "129", "--base-size", "300", "--scales", "0.5,1", "--out", out,
          "--workers", "0", "--resize", "opencv"], capsys)
    res = json.loads((out / "results.json").read_text())
    assert "miou_cityscapes_script" in res and res["miou_cityscapes_script"] >= res["miou"]
    ids = np.array(Image.open(out / "labels" / "frankfurt_000000_000294_leftImg8bit.png"))
    assert ids.shape == (128, 256) and set(np.unique(ids)) <= {7, 8, 11, 12, 13, 17, 19, 20, 21,
                                                                22, 23, 24, 25, 26, 27, 28, 31,
                                                                32, 33}
    cs = res["cityscapes"]
    assert cs["iou_class"] == res["miou_cityscapes_script"] and cs["instance_images"] == 1
    assert all(cs[k] is not None for k in ("iiou_class", "iou_category", "iiou_category"))
    assert [c["name"] for c in cs["categories"]] == ["flat", "construction", "object", "nature",
                                                     "sky", "human", "vehicle"]
    assert res["classes"][11]["iiou"] is not None and res["classes"][0]["iiou"] is None
    assert "iIoU" in text and "Score average (categories)" in text
    # without gtFine_instanceIds (resumed from the PNGs above): IoU as before, no iIoU, and why
    root = tmp_path / "cityscapes"
    shutil.copytree(SAMPLES / "cityscapes", root)
    for f in root.rglob("*_gtFine_instanceIds.png"):
        f.unlink()
    (out / "results.json").unlink()
    text = _run(["--weights", models[19], "--dataset", "cityscapes", "--data-root", tmp_path,
                 "--crop-size", "129", "--base-size", "300", "--scales", "0.5,1", "--out", out,
                 "--workers", "0", "--resize", "opencv", "--resume"], capsys)
    again = json.loads((out / "results.json").read_text())
    assert again["cityscapes"]["iou_class"] == cs["iou_class"]
    assert again["cityscapes"]["iiou_class"] is None and again["cityscapes"]["iiou_category"] is None
    assert again["cityscapes"]["iiou_missing"] == "gtFine_instanceIds found for 0 of 1 images"
    assert "iIoU not computed: gtFine_instanceIds found for 0 of 1 images" in text
    assert again["softmax"] == res["softmax"]                        # kept in the label PNG


def test_voc_test_split_official_layout(models, tmp_path, capsys):
    root = tmp_path / "VOC2012"
    shutil.copytree(SAMPLES / "VOC2012", root)
    (root / "ImageSets/Segmentation/test.txt").write_text("2007_000129\n")
    shutil.rmtree(root / "SegmentationClass")
    out = tmp_path / "out"
    text = _run(["--weights", models[21], "--dataset", "voc", "--data-root", tmp_path,
                 "--out", out, "--workers", "0"], capsys)              # default split: test
    sub = out / "results/VOC2012/Segmentation/comp6_test_cls/2007_000129.png"
    assert Image.open(sub).mode == "P"
    assert "official server" in text.strip().splitlines()[-1]
    assert not (out / "results.json").exists()


def test_missing_files_stop_before_any_work(models, tmp_path, capsys, monkeypatch):
    shutil.copytree(SAMPLES / "VOC2012", tmp_path / "VOC2012")
    gone = tmp_path / "VOC2012/SegmentationClass/2007_000129.png"
    gone.unlink()
    monkeypatch.setattr(eval_run, "segment_counted", _fail_if_called)
    argv = ["--weights", models[21], "--dataset", "voc", "--split", "val",
            "--data-root", tmp_path, "--out", tmp_path / "o", "--workers", "0"]
    assert eval_run.main([str(a) for a in argv]) == 1       # bad input: 1 (psp_torch/cli.py)
    err = capsys.readouterr().err
    assert err.startswith(f"error: {gone}: 1 dataset file(s) missing or unreadable"), err
    assert "2007_000129.png (missing)" in err
    monkeypatch.undo()
    text = _run(argv + ["--skip-missing"], capsys)
    assert "NO REFERENCE (files were skipped)" in text
    assert json.loads((tmp_path / "o/results.json").read_text())["images"] == 1


def test_image_mode_writes_overlay(models, tmp_path, capsys):
    img = SAMPLES / "VOC2012/JPEGImages/2007_000033.jpg"
    text = _run(["--weights", models[21], "--dataset", "voc", "--image", img,
                 "--out", tmp_path], capsys)
    assert "overlay" in text
    overlay = np.array(Image.open(tmp_path / "overlay/2007_000033.png"))
    assert overlay.shape == (366, 500, 3)


def _photo(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (40, 52, 3), dtype=np.uint8)).save(path)
    return path


def test_image_paths_folders_globs_and_distinct_names(tmp_path):
    a, b = _photo(tmp_path / "a" / "x.jpg", 0), _photo(tmp_path / "b" / "x.jpg", 1)
    c = _photo(tmp_path / "b" / "x.png", 2)
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    paths = eval_run.image_paths([tmp_path / "a", str(tmp_path / "b" / "*.jpg"), a])
    assert paths == [a, b]                                  # folder, glob; a named twice
    assert eval_run.output_names(paths) == ["a/x", "b/x"]
    assert eval_run.output_names([b, c]) == ["x.jpg", "x.png"]
    assert eval_run.output_names([a, c]) == ["a/x", "b/x"]
    assert eval_run.image_paths([tmp_path / "b"]) == [b, c]
    names = eval_run.output_names([a, b, c])
    assert len(set(names)) == 3
    for bad, what in [(tmp_path / "none.jpg", "no such image"),
                      (str(tmp_path / "*.gif"), "no file matches"),
                      (tmp_path / "empty", "no images")]:
        if "empty" in str(bad):
            bad.mkdir()
        with pytest.raises(FileNotFoundError) as e:
            eval_run.image_paths([bad])
        assert str(bad) == e.value.filename and what in e.value.strerror


def test_image_mode_folders_keep_same_named_outputs_apart(models, tmp_path, capsys):
    """Two images called x.jpg in two folders: two overlays, each of its own image."""
    _photo(tmp_path / "in" / "a" / "x.jpg", 0)
    _photo(tmp_path / "in" / "b" / "x.jpg", 1)
    out = tmp_path / "out"
    text = _run(["--weights", models[21], "--dataset", "voc", "--image", tmp_path / "in" / "a",
                 str(tmp_path / "in" / "b" / "*.jpg"), "--out", out, "--crop-size", "33",
                 "--base-size", "52"], capsys)
    overlays = sorted(p.relative_to(out / "overlay").as_posix()
                      for p in (out / "overlay").rglob("*.png"))
    assert overlays == ["a/x.png", "b/x.png"], (overlays, text)
    assert (out / "overlay/a/x.png").read_bytes() != (out / "overlay/b/x.png").read_bytes()


def test_image_mode_missing_image_is_one_line(models, tmp_path, capsys):
    rc = eval_run.main([str(a) for a in ["--weights", models[21], "--dataset", "voc",
                                         "--image", tmp_path / "nope", "--out", tmp_path]])
    err = capsys.readouterr().err
    assert rc == 1 and err == f"error: {tmp_path / 'nope'}: no such image, folder or pattern\n"


def test_torchrun_two_processes_equal_one_process(models, tmp_path):
    common = ["--weights", models[150], "--dataset", "ade20k", "--data-root", SAMPLES,
              "--base-size", "200", "--crop-size", "161", "--device", "cpu", "--workers", "1"]
    eval_run.main([str(a) for a in common + ["--out", tmp_path / "one"]])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "eval" / "run.py")] + [str(a) for a in common + ["--out", tmp_path / "two"]]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = (tmp_path / "one/results.json").read_text()
    assert (tmp_path / "two/results.json").read_text() == one
    assert len(list((tmp_path / "two/labels").glob("*.png"))) == 3


# ---------------------------------------------------------------- verdict

def test_verdict_pass_fail_no_reference():
    ref = Published(41.68, 80.04)
    assert verdict(0.4175, 0.8000, ref, None).startswith("PASS")
    v = verdict(0.4150, 0.8004, ref, None)
    assert v.startswith("FAIL") and "-0.18" in v and f"tolerance {TOLERANCE}" in v
    assert verdict(0.4168, 0.8030, ref, None).startswith("FAIL")      # pixel acc off by 0.26
    assert verdict(0.8541, None, Published(85.41), None).startswith("PASS")
    assert verdict(0.5, 0.5, ref, "--limit") == "NO REFERENCE (--limit)"


def test_reference_applies_only_to_default_full_split():
    ade = datasets.get("ade20k").eval
    base = eval_run.Settings(150, 473, 512, MEAN_RGB)
    assert eval_run.reference_for("ade20k", "val", base, False, None) == (ade.published_ss, None)
    ms = eval_run.Settings(150, 473, 512, MEAN_RGB, scales=tuple(MS_SCALES))
    assert eval_run.reference_for("ade20k", "val", ms, False, None) == (ade.published_ms, None)
    for other in [eval_run.Settings(150, 473, 512, MEAN_RGB, flip=False),
                  eval_run.Settings(150, 473, 512, MEAN_RGB, resize="opencv"),
                  eval_run.Settings(150, 473, 512, MEAN_RGB, precision="bf16"),
                  eval_run.Settings(150, 473, 512, MEAN_RGB, scales=(0.5, 1.0)),
                  eval_run.Settings(150, 353, 512, MEAN_RGB),
                  eval_run.Settings(150, 473, 500, MEAN_RGB),
                  eval_run.Settings(150, 473, 512, (0, 0, 0)),
                  eval_run.Settings(150, 473, 512, MEAN_RGB, stride_rate=0.5)]:
        assert eval_run.reference_for("ade20k", "val", other, False, None)[0] is None
    _, why = eval_run.reference_for("ade20k", "val", eval_run.Settings(150, 353, 512), False,
                                    None)
    assert why == "settings differ from the authors' (crop_size 353, theirs 473)"
    # what cannot move the numbers beyond rounding keeps the verdict
    for same in [eval_run.Settings(150, 473, 512, batch=7, device="cuda", compile=True),
                 eval_run.Settings(150, 473, 512, softmax="matlab")]:
        assert eval_run.reference_for("ade20k", "val", same, False, None) == \
            (ade.published_ss, None)
    assert eval_run.reference_for("ade20k", "val", base, False, "--limit") == (None, "--limit")
    assert eval_run.reference_for("voc", "val", base, False, None)[0] is None     # test only
    assert eval_run.reference_for("ade20k", "val", base, True, None) == \
        (None, "one's own dataset (--num-classes)")


# ---------------------------------------------------------------- --resume proves the run

def _ade_argv(weights, out, *extra):
    return ["--weights", weights, "--dataset", "ade20k", "--data-root", SAMPLES, "--base-size",
            "160", "--crop-size", "161", "--out", out, "--workers", "0", "--limit", "2", *extra]


def _refused(argv, capsys, *mentions):
    rc = eval_run.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    for m in mentions:
        assert m in err, err
    return err


def test_resume_refuses_other_settings_and_other_models(models, tmp_path, capsys, monkeypatch):
    """The issue's cases: a single-scale folder resumed with --ms, and a folder resumed with
    another model, are refused (naming what differs); the folder is left as it was."""
    out = tmp_path / "run"
    _run(_ade_argv(models[150], out), capsys)
    rec = json.loads((out / "run.json").read_text())
    assert rec["settings"]["scales"] == [1.0] and rec["settings"]["crop_size"] == 161
    assert rec["model"]["sha256"] == json.loads((out / "results.json").read_text())["model_sha256"]
    before = {p.name: p.read_bytes() for p in (out / "labels").iterdir()}
    monkeypatch.setattr(eval_run, "segment_counted", _fail_if_called)

    _refused(_ade_argv(models[150], out, "--scales", "0.5,1", "--resume"), capsys,
             "run.json", "settings.scales: saved [1.0], now [0.5, 1.0]")
    _refused(_ade_argv(models[150], out, "--no-flip", "--resume"), capsys, "settings.flip")
    _refused(_ade_argv(models[150], out, "--softmax", "matlab", "--resume"), capsys,
             'settings.softmax: saved "stable", now "matlab"')
    other = _tiny_caffe_net(tmp_path / "other", 150, hot=0.5)
    _refused(_ade_argv(other, out, "--resume"), capsys, "model.sha256")
    assert {p.name: p.read_bytes() for p in (out / "labels").iterdir()} == before

    # the same model under another name and another batch size: the same run
    moved = shutil.copy(models[150], tmp_path / "moved.pth")
    text = _run(_ade_argv(moved, out, "--batch", "5", "--resume"), capsys)
    assert "(2 resumed)" in text


def test_resume_refuses_outputs_without_a_record(models, tmp_path, capsys):
    out = tmp_path / "run"
    _run(_ade_argv(models[150], out), capsys)
    (out / "run.json").unlink()                       # e.g. made by an older version
    _refused(_ade_argv(models[150], out, "--resume"), capsys, "run.json", "no record")


def test_a_fresh_run_replaces_another_runs_outputs(models, tmp_path, capsys):
    """Without --resume a different run takes the folder over: the earlier predictions go,
    so that a later --resume can only reuse what the recorded run made."""
    out = tmp_path / "run"
    _run(_ade_argv(models[150], out, "--limit", "3"), capsys)
    assert len(list((out / "labels").iterdir())) == 3
    assert eval_run.main([str(a) for a in _ade_argv(models[150], out, "--no-flip",
                                                    "--limit", "1")]) == 0
    assert "held outputs of another run (settings.flip: saved true, now false)" in \
        capsys.readouterr().err
    assert len(list((out / "labels").iterdir())) == 1
    assert json.loads((out / "run.json").read_text())["settings"]["flip"] is False
    text = _run(_ade_argv(models[150], out, "--no-flip", "--limit", "3", "--resume"), capsys)
    assert "(1 resumed)" in text
