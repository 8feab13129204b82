"""Adding a dataset is adding a module: a CamVid-like module (11 classes, its own layout and
label codec, shaped like psp_torch/datasets/voc2012.py) is written into a folder of the
dataset package at run time, and train/run.py and eval/run.py use it through --dataset with no
other edit: its classes, crop, recipe, layout, codec, evaluation defaults and published
numbers all come from the module (a slim PSPNet50, two iterations, two 40x56 images)."""
import json
import sys

import numpy as np
import pytest
from PIL import Image

import psp_torch
import psp_torch.datasets as datasets
from conftest import slim_voc_training
from pspnet_caffe.eval import run as eval_run
from pspnet_caffe.train import run as train_run

CAMVID = '''"""CamVid (11 classes), as a test writes it: ``<split>.txt`` lists ids, images in
``<split>/<id>.png``, labels in ``<split>annot/<id>.png`` holding 0..10, 11 = void."""
from pathlib import Path

import numpy as np

from psp_torch.datasets.base import (IGNORE, Dataset, DatasetError, EvalDefaults, Published,
                                     Sample, Split, TrainRecipe, frozen_palette, voc_colormap)

CLASSES = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car",
           "pedestrian", "bicyclist")
VOID = 11


class CamVid(Dataset):
    def samples(self, root, split="val"):
        listing = Path(root) / f"{split}.txt"
        if not listing.is_file():
            raise DatasetError(f"{listing}: split list missing")
        return [Sample(i, Path(root) / split / f"{i}.png", Path(root) / f"{split}annot" / f"{i}.png")
                for i in listing.read_text().split()]

    def decode_values(self, values, path):
        return np.where(values == VOID, IGNORE, values).astype(np.uint8)


DATASET = CamVid(
    name="camvid",
    title="CamVid",
    classes=CLASSES,
    palette=frozen_palette(voc_colormap(len(CLASSES))),
    label_ids=len(CLASSES) + 1,
    splits={"train": Split(2), "val": Split(2)},
    train_split="train",
    crop_size=49,
    eval=EvalDefaults(split="val", base_size=64, published_ss=Published(99.9, 99.9)),
    train=TrainRecipe(iterations=2, rotate=False, blur=False, batch_size=2),
)
'''


@pytest.fixture
def camvid(tmp_path, monkeypatch):
    """The module in a folder of the package's search path, and a tiny dataset in its layout."""
    package = tmp_path / "more_datasets"
    package.mkdir()
    (package / "camvid.py").write_text(CAMVID)
    monkeypatch.setattr(datasets, "__path__", list(datasets.__path__) + [str(package)])
    datasets.registry.cache_clear()
    root = tmp_path / "CamVid"
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(
                root / split / f"f{i}.png")
            Image.fromarray(rng.integers(0, 12, (40, 56), dtype=np.uint8)).save(
                root / f"{split}annot" / f"f{i}.png")
        (root / f"{split}.txt").write_text("f0\nf1\n")
    yield root
    sys.modules.pop("psp_torch.datasets.camvid", None)
    monkeypatch.undo()
    datasets.registry.cache_clear()


def test_a_dataset_module_is_all_the_clis_need(camvid, tmp_path, capsys):
    assert "camvid" in datasets.names()
    _, slim = slim_voc_training(tmp_path)        # 150 classes: the classifiers re-initialised
    out = tmp_path / "run"
    assert train_run.main([str(a) for a in [
        "--dataset", "camvid", "--data-root", camvid, "--init", slim, "--out", out,
        "--workers", "0", "--no-progress", "--device", "cpu"]]) == 0
    err = capsys.readouterr().err
    assert "150 -> 11 classes" in err
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in log] == [1, 2]                     # the module's iterations
    model = psp_torch.load(out / "model.pth")
    camvid_facts = datasets.get("camvid")
    assert model.meta["dataset"] == "camvid"
    assert model.meta["class_names"] == list(camvid_facts.classes)
    assert (model.meta["crop_size"], model.meta["base_size"]) == (49, 64)

    ev = tmp_path / "ev"
    assert eval_run.main([str(a) for a in [
        "--weights", out / "model.pth", "--dataset", "camvid", "--data-root", camvid,
        "--out", ev, "--workers", "0", "--device", "cpu"]]) == 0
    text = capsys.readouterr().out
    res = json.loads((ev / "results.json").read_text())
    assert (res["dataset"], res["split"], res["images"]) == ("camvid", "val", 2)
    assert res["settings"]["crop_size"] == 49 and res["settings"]["base_size"] == 64
    assert [c["name"] for c in res["classes"]] == list(camvid_facts.classes)
    # the full split with the authors' settings: the module's published number is the
    # reference (a random slim net is far from it)
    assert text.strip().splitlines()[-1].startswith("FAIL")
    labels = np.array(Image.open(ev / "labels" / "f0.png"))
    assert labels.shape == (40, 56) and labels.max() < 11
