"""train/run.py end to end on the slim oracle PSPNet50 (widths / 16) at crop 97: outputs, resume
bit for bit, refusal of changed settings, bad labels, Ctrl-C, fine-tuning to a new class count
then eval/run.py --list, usage errors. Small: a few iterations of batch 2 each."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import psp_torch
from pspnet_caffe.converter.convert import convert
from psp_torch import datasets as ds
from pspnet_caffe.eval import run as eval_run
from pspnet_caffe.train import run as train_run

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "data" / "samples"
SLIM = ROOT / "tests" / "data" / "oracle" / "nets" / "pspnet50_ade20k_slim"
CROP = "97"


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a busy 2-core machine this is several times faster than two
    competing ones (bit-exactness holds at any fixed count)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def slim(tmp_path_factory):
    d = tmp_path_factory.mktemp("slim")
    return convert(SLIM / "weights.caffemodel", SLIM / "deploy.prototxt", out=d / "slim.pth",
                   log=lambda *a: None)


@pytest.fixture(scope="module")
def custom(tmp_path_factory):
    """One's own 3-class dataset: the VOC sample images, labels 0 background, 1 person, 2 other
    objects, 255 border."""
    root = tmp_path_factory.mktemp("custom")
    lines = []
    for img in sorted((SAMPLES / "VOC2012" / "JPEGImages").glob("*.jpg")):
        voc = ds.get("voc").read_label(
            SAMPLES / "VOC2012" / "SegmentationClass" / f"{img.stem}.png", 21)
        lab = np.where(voc == 255, 255, np.where(voc == 0, 0, np.where(voc == 15, 1, 2)))
        (root / "images").mkdir(exist_ok=True)
        (root / "labels").mkdir(exist_ok=True)
        (root / "images" / img.name).write_bytes(img.read_bytes())
        Image.fromarray(lab.astype(np.uint8)).save(root / "labels" / f"{img.stem}.png")
        lines.append(f"images/{img.name} labels/{img.stem}.png")
    (root / "train.txt").write_text("\n".join(lines) + "\n")
    (root / "names.txt").write_text("background\nperson\nobject\n")
    return root


def _args(custom, slim, out, *extra):
    return ["--data-root", custom, "--list", custom / "train.txt", "--num-classes", "3",
            "--class-names", custom / "names.txt", "--init", slim, "--out", out,
            "--crop-size", CROP, "--batch-size", "2", "--workers", "0", "--no-progress",
            *extra]


def _train(argv) -> int:
    return train_run.main([str(a) for a in argv])


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_outputs_and_resume_bit_for_bit(custom, slim, tmp_path):
    full = tmp_path / "full"
    assert _train(_args(custom, slim, full, "--iters", "4", "--save-every", "2")) == 0
    for name in ("checkpoint.pth", "model.pth", "log.jsonl", "curves.png"):
        assert (full / name).is_file(), name
    rows = [json.loads(ln) for ln in (full / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) >= {"iter", "lr", "loss", "main", "aux", "images_per_s"}
    assert rows[0]["lr"] == pytest.approx(0.01) and rows[1]["lr"] < rows[0]["lr"]
    assert all(abs(r["loss"] - (r["main"] + 0.4 * r["aux"])) < 1e-4 * r["loss"] for r in rows)
    ckpt = torch.load(full / "checkpoint.pth", weights_only=True)     # plain data only
    assert ckpt["iteration"] == 4 and ckpt["recipe"]["num_classes"] == 3
    model = psp_torch.load(full / "model.pth")
    assert model.meta["class_names"] == ["background", "person", "object"]
    assert model.meta["crop_size"] == 97 and model.meta["recipe"]["iters"] == 4

    part = tmp_path / "part"       # stop after 2 (the schedule stays that of 4), then resume
    assert _train(_args(custom, slim, part, "--iters", "4", "--save-every", "3",
                        "--stop-after", "2")) == 0
    assert not (part / "model.pth").exists()
    assert torch.load(part / "checkpoint.pth", weights_only=True)["iteration"] == 2
    assert _train(_args(custom, slim, part, "--iters", "4", "--save-every", "3",
                        "--resume")) == 0
    a, b = _state(full / "model.pth"), _state(part / "model.pth")
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"{len(diff)} tensors differ after resume, e.g. {diff[:3]}"
    la = [json.loads(ln) for ln in (full / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(ln) for ln in (part / "log.jsonl").read_text().splitlines()]
    assert [(r["iter"], r["loss"]) for r in la] == [(r["iter"], r["loss"]) for r in lb]


def test_resume_refuses_other_settings_and_another_init(custom, slim, tmp_path, capsys):
    out = tmp_path / "r"
    assert _train(_args(custom, slim, out, "--iters", "3", "--stop-after", "1")) == 0
    capsys.readouterr()
    assert _train(_args(custom, slim, out, "--iters", "3", "--lr", "0.02", "--augment", "none",
                        "--resume")) == 1
    err = capsys.readouterr().err
    assert "--lr 0.01 -> 0.02" in err and "--augment 'paper' -> 'none'" in err
    # without --resume an existing run is never overwritten
    assert _train(_args(custom, slim, out, "--iters", "3")) == 1
    assert "--resume" in capsys.readouterr().err
    # the same flags but another file at the --init path: the weights hash differs
    other = tmp_path / "other.pth"
    m = psp_torch.load(slim)
    with torch.no_grad():
        m.stem.conv1.weight.mul_(1.5)
    psp_torch.io.save_pspnet(m, other)
    out2 = tmp_path / "r2"
    init_copy = tmp_path / "init.pth"
    init_copy.write_bytes(Path(slim).read_bytes())
    assert _train(_args(custom, init_copy, out2, "--iters", "3", "--stop-after", "1")) == 0
    init_copy.write_bytes(other.read_bytes())
    capsys.readouterr()
    assert _train(_args(custom, init_copy, out2, "--iters", "3", "--resume")) == 1
    assert "initial model differs" in capsys.readouterr().err


def test_bad_labels_stop_before_training(custom, slim, tmp_path, capsys):
    img = next((custom / "images").glob("*.jpg"))
    (tmp_path / img.name).write_bytes(img.read_bytes())
    h, w = ds.read_image(img).shape[:2]
    lab = np.zeros((h, w), np.uint8)
    lab[:10, :10], lab[20:30, :10], lab[-1, -1] = 7, 9, 255
    Image.fromarray(lab).save(tmp_path / "badlabel.png")
    Image.fromarray(np.minimum(lab, 2)).save(tmp_path / "good.png")
    (tmp_path / "bad.txt").write_text(f"{img.name} good.png\n{img.name} badlabel.png\n")
    out = tmp_path / "out"
    argv = _args(tmp_path, slim, out, "--iters", "2")
    argv[argv.index("--class-names"):argv.index("--class-names") + 2] = []
    argv[argv.index(tmp_path / "train.txt")] = tmp_path / "bad.txt"
    assert _train(argv) == 1
    err = capsys.readouterr().err
    assert "badlabel.png: [7, 9]" in err and "0..2" in err and "good.png" not in err
    assert not (out / "checkpoint.pth").exists() and not (out / "log.jsonl").exists()


def test_finetune_to_new_classes_then_eval_list(custom, slim, tmp_path, capsys):
    out = tmp_path / "ft"
    assert _train(_args(custom, slim, out, "--iters", "2", "--augment", "none")) == 0
    err = capsys.readouterr().err
    assert "re-initialised" in err and "150 -> 3" in err
    ev = tmp_path / "ev"
    rc = eval_run.main(["--weights", str(out / "model.pth"), "--list", str(custom / "train.txt"),
                        "--num-classes", "3", "--data-root", str(custom), "--out", str(ev),
                        "--workers", "0"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "person" in text and "object" in text and "NO REFERENCE" in text
    assert len(list((ev / "labels" / "images").glob("*.png"))) == 2    # as the list names them
    # the model file goes back to Caffe as it is
    from pspnet_caffe.converter.export import export
    proto, weights = export(out / "model.pth", tmp_path / "caffe", log=lambda *a: None)
    assert "conv6" in proto.read_text() and weights.stat().st_size > 0


def test_amp_and_channels_last_run_on_cpu(custom, slim, tmp_path):
    out = tmp_path / "amp"
    assert _train(_args(custom, slim, out, "--iters", "2", "--augment", "none", "--amp", "bf16",
                        "--channels-last")) == 0
    rows = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(np.isfinite(r["loss"]) for r in rows)
    assert torch.load(out / "checkpoint.pth", weights_only=True)["recipe"]["amp"] == "bf16"


@pytest.mark.parametrize("argv, message", [
    ([], "required"),
    (["--data-root", "x", "--out", "o", "--init", "a.pth"], "--dataset NAME or --list"),
    (["--data-root", "x", "--out", "o", "--list", "l", "--num-classes", "3", "--init", "a"],
     "--list needs --iters"),
    (["--data-root", "x", "--out", "o", "--dataset", "voc"], "exactly one of --init"),
    (["--data-root", "x", "--out", "o", "--dataset", "voc", "--init", "a", "--bins", "1"],
     "--bins: only with --arch"),
    (["--data-root", "x", "--out", "o", "--dataset", "voc", "--arch", "pspnet50",
      "--loss-scale", "2"], "must be in (0, 1]"),
    (["--data-root", "x", "--out", "o", "--dataset", "voc", "--arch", "pspnet50",
      "--batch-size", "0"], "positive integer"),
    (["--data-root", "x", "--out", "o", "--dataset", "voc", "--arch", "pspnet50",
      "--val-every", "5"], "--val-every needs"),
    (["--data-root", "x", "--out", "o", "--dataset", "voc", "--arch", "pspnet50",
      "--num-classes", "5"], "voc has 21"),
])
def test_usage_errors_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        train_run.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_ctrl_c_stops_cleanly_after_a_checkpoint(custom, slim, tmp_path):
    """SIGINT during iteration 2 (the child waits there: tests/faulty.py): the iteration is
    finished, checkpoint.pth written at iteration 2, status 130; --resume then finishes."""
    out = tmp_path / "int"
    args = [str(a) for a in _args(custom, slim, out, "--iters", "4", "--augment", "none",
                                  "--save-every", "1000")]
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "faulty.py"),
                             "pspnet_caffe.train.trainer:train_step", "2", "pause", "always",
                             str(ROOT / "train" / "run.py"), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        line = proc.stdout.readline()            # an event: the child is inside iteration 2
        assert line.startswith("PAUSED"), (line, proc.stderr.read())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate("\n", timeout=600)     # the timeout only guards a hang
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "checkpoint written at iteration 2 of 4" in err
    assert torch.load(out / "checkpoint.pth", weights_only=True)["iteration"] == 2
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    assert not (out / "model.pth").exists()
    assert _train(_args(custom, slim, out, "--iters", "4", "--augment", "none",
                        "--save-every", "1000", "--resume")) == 0
    assert len((out / "log.jsonl").read_text().splitlines()) == 4


def test_benchmark_dataset_with_validation_and_best(slim, tmp_path, capsys):
    """--dataset ade20k: the training split in its own layout, the preset's classes and names,
    --val on the val split with the evaluation protocol (single scale), best.pth kept."""
    import shutil
    root = tmp_path / "ADEChallengeData2016"
    src = SAMPLES / "ADEChallengeData2016"
    for kind in ("images", "annotations"):
        shutil.copytree(src / kind / "validation", root / kind / "training")
        shutil.copytree(src / kind / "validation", root / kind / "validation")
    out = tmp_path / "ade"
    assert _train(["--dataset", "ade20k", "--data-root", tmp_path, "--init", slim, "--out", out,
                   "--crop-size", CROP, "--batch-size", "2", "--workers", "0", "--no-progress",
                   "--iters", "2", "--val", "--val-every", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("val mIoU") == 2 and "re-initialised" not in err
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert [p[0] for p in ckpt["val"]] == [1, 2] and ckpt["best_miou"] == max(p[1] for p in ckpt["val"])
    best = psp_torch.load(out / "best.pth")
    model = psp_torch.load(out / "model.pth")
    assert model.meta["dataset"] == "ade20k" and len(model.meta["class_names"]) == 150
    assert model.meta["base_size"] == 512 and best.meta["iteration"] in (1, 2)
    # validation is eval's scoring: eval/run.py on model.pth gives the last val point's mIoU
    ev = tmp_path / "ev"
    assert eval_run.main(["--weights", str(out / "model.pth"), "--dataset", "ade20k",
                          "--data-root", str(tmp_path), "--out", str(ev), "--workers", "0"]) == 0
    res = json.loads((ev / "results.json").read_text())
    assert ckpt["val"][-1][0] == 2 and res["miou"] == ckpt["val"][-1][1]


def test_validation_leaves_the_training_as_it_is(custom, slim, tmp_path):
    """The validation options are kept out of the resume identity because they cannot change
    the numbers: a run validating after every iteration (dropout on, so torch's RNG matters)
    ends with the weights of one that never validates."""
    plain, validated = tmp_path / "plain", tmp_path / "val"
    assert _train(_args(custom, slim, plain, "--iters", "2", "--augment", "none")) == 0
    assert _train(_args(custom, slim, validated, "--iters", "2", "--augment", "none",
                        "--val-list", custom / "train.txt", "--val-every", "1")) == 0
    a, b = _state(plain / "model.pth"), _state(validated / "model.pth")
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"{len(diff)} tensors differ after validating, e.g. {diff[:3]}"
    assert len(torch.load(validated / "checkpoint.pth", weights_only=True)["val"]) == 2
