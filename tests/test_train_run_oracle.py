"""The Caffe oracle through the whole command: train/run.py started from the case's
init.caffemodel (converted), on its two images written as PNG files and read back through the
data pipeline (--augment none --dropout 0 --batch-size 2 --crop-size 473, the default recipe;
--freeze-bn for bn_frozen), reproduces Caffe's losses of iterations 1-3 and every blob after
iterations 1 and 3 within the tolerances of tests/test_train_oracle.py (K x the oracle's noise
floor). What this adds to that test: the files, the label convention, the data order, the
loader, the optimiser and schedule as the CLI builds them, the checkpoint (iteration 1) and
model.pth (iteration 3) as written. The data order of seed 0 puts the two images in the order
(0, 1), (1, 0), (1, 0): only the order of float32 sums over the batch differs from Caffe's.
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import DATA
from pspnet_caffe.converter.convert import convert
from pspnet_caffe.train import run as train_run
from psp_torch.config import PSPNetConfig
from psp_torch.caffe.weights import caffe_blobs
from test_train_oracle import K, _noise, _profile, _report

TRAIN = DATA / "oracle" / "train"


@pytest.fixture(scope="module", params=("bn_train", "bn_frozen"))
def cli_run(request, tmp_path_factory):
    case = request.param
    d = tmp_path_factory.mktemp(case)
    pth = convert(TRAIN / case / "init.caffemodel", out=d / "init.pth", log=lambda *a: None)
    with np.load(TRAIN / "data.npz") as z:
        images, labels = z["images_rgb"], z["labels"]
    lines = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        Image.fromarray(img).save(d / f"{i}.png")
        Image.fromarray(lab).save(d / f"{i}_label.png")
        lines.append(f"{i}.png {i}_label.png")
    (d / "train.txt").write_text("\n".join(lines) + "\n")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        argv = ["--data-root", d, "--list", d / "train.txt", "--num-classes", "150",
                "--init", pth, "--out", d / "out", "--iters", "3", "--batch-size", "2",
                "--crop-size", "473", "--augment", "none", "--dropout", "0", "--workers", "0",
                "--no-progress", "--save-every", "1",
                *(["--freeze-bn"] if case == "bn_frozen" else [])]
        argv = [str(a) for a in argv]
        assert train_run.main(argv + ["--stop-after", "1"]) == 0
        ck1 = torch.load(d / "out" / "checkpoint.pth", weights_only=True)
        assert train_run.main(argv + ["--resume"]) == 0
    finally:
        torch.set_num_threads(n)
    final = torch.load(d / "out" / "model.pth", weights_only=True)
    log = [json.loads(ln) for ln in (d / "out" / "log.jsonl").read_text().splitlines()]
    return case, ck1, final, log


def _blobs(config_dict, state) -> dict:
    blobs = caffe_blobs(PSPNetConfig.from_dict(config_dict), state)
    return {f"{layer}#{i}": b for layer, bs in blobs.items() for i, b in enumerate(bs)}


def test_blobs_after_iterations_1_and_3(cli_run):
    case, ck1, final, _ = cli_run
    assert ck1["iteration"] == 1
    for it, state in ((1, ck1["model"]), (3, final["state_dict"])):
        noise = _noise(TRAIN / case)["per_file"][f"params_iter{it}.npz"]
        with np.load(TRAIN / case / f"params_iter{it}.npz") as ref:
            ours = _blobs(final["config"], state)
            assert set(ref.files) == set(ours)
            rows = _profile(ours, ref, noise)
        assert all(r[0] <= K for r in rows), _report(rows, f"train/run.py {case} iteration {it}")


def test_losses_and_lr_of_each_iteration(cli_run):
    case, _, _, log = cli_run
    ref = json.loads((TRAIN / case / "losses.json").read_text())
    ref = ref["iterations"] if isinstance(ref, dict) else ref
    other = _noise(TRAIN / case)["losses_2_threads"]
    meta = json.loads((TRAIN / case / "meta.json").read_text())
    recheck = meta["numpy_recheck_of_iteration1_losses"]
    assert [r["iter"] for r in log] == [1, 2, 3]
    for row, r, r2, lr in zip(log, ref, other, meta["lr_per_iteration"]):
        assert row["lr"] == pytest.approx(lr["float64"], rel=1e-12)
        for ours, key, meta_key in (("main", "loss_main", "loss"), ("aux", "loss_aux", "loss_aux")):
            floor = max(abs(r2[key] - r[key]),
                        abs(recheck[meta_key]["caffe"] - recheck[meta_key]["numpy_float64"]))
            assert abs(row[ours] - r[key]) <= K * floor, (case, row, r)
