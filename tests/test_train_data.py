"""train/data.py: training splits of the dataset modules (psp_torch.datasets), the up-front label scan, and a data
order that depends only on the seed and the iteration (not on the number of processes)."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from psp_torch import datasets as ds
from psp_torch.datasets import listfile
from pspnet_caffe.train import augment as A
from pspnet_caffe.train import data as D

OWN = listfile.DATASET.name          # one's own classes: labels as stored

SAMPLES = Path(__file__).resolve().parent / "data" / "samples"


def test_order_is_the_same_whatever_the_world_size():
    n, B = 7, 4
    for it in range(5):
        one = [D.sample_index(3, p, n) for p in D.rank_positions(it, B, 0, 1)]
        two = [D.sample_index(3, p, n) for r in range(2) for p in D.rank_positions(it, B, r, 2)]
        four = [D.sample_index(3, p, n) for r in range(4) for p in D.rank_positions(it, B, r, 4)]
        assert one == two == four
    # every epoch is a permutation; another seed is another order
    assert sorted(D.sample_index(3, p, n) for p in range(7, 14)) == list(range(n))
    assert [D.sample_index(3, p, n) for p in range(7)] != [D.sample_index(4, p, n) for p in range(7)]
    with pytest.raises(ValueError, match="divide"):
        D.rank_positions(0, 3, 0, 2)


def _list_dataset(tmp_path, labels):
    """A list-file dataset of the VOC samples with the given label arrays."""
    src = SAMPLES / "VOC2012" / "JPEGImages"
    lines = []
    for k, (img, lab) in enumerate(zip(sorted(src.glob("*.jpg")), labels)):
        shutil.copy(img, tmp_path / img.name)
        h, w = ds.read_image(img).shape[:2]
        Image.fromarray(np.resize(lab, (h, w)).astype(np.uint8)).save(tmp_path / f"l{k}.png")
        lines.append(f"{img.name} l{k}.png")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    return D.training_samples(None, tmp_path, tmp_path / "train.txt")


def test_scan_names_every_bad_file_and_value(tmp_path):
    items = _list_dataset(tmp_path, [np.array([0, 1, 255]), np.array([0, 2, 9, 200])])
    assert D.scan_labels(items, OWN, 201, progress=False).tolist() == [0, 1, 2, 9, 200, 255]
    with pytest.raises(ds.DatasetError) as e:
        D.scan_labels(items, OWN, 3, progress=False)
    msg = str(e.value)
    assert "l1.png: [9, 200]" in msg and "l0.png" not in msg and "0..2" in msg


def test_list_without_labels_is_refused(tmp_path):
    (tmp_path / "t.txt").write_text("a.jpg\n")
    with pytest.raises(ds.DatasetError, match="without a label"):
        D.training_samples(None, tmp_path, tmp_path / "t.txt")


def test_voc_train_aug_layout(tmp_path):
    root = tmp_path / "VOC2012"
    shutil.copytree(SAMPLES / "VOC2012" / "JPEGImages", root / "JPEGImages")
    (root / "SegmentationClassAug").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    ids = [p.stem for p in sorted((root / "JPEGImages").glob("*.jpg"))]
    (root / "ImageSets" / "Segmentation" / "train_aug.txt").write_text("\n".join(ids))
    items = D.training_samples("voc", tmp_path)
    assert [s.label.parent.name for s in items] == ["SegmentationClassAug"] * 2
    assert [s.name for s in items] == ids


def test_trainset_items_are_stateless_and_sharded(tmp_path):
    items = _list_dataset(tmp_path, [np.array([0, 1]), np.array([2, 255])])
    aug = A.recipe("paper", 33)
    one = D.TrainSet(items, OWN, 3, aug, seed=1, batch_size=2, start=3, stop=5)
    assert len(one) == 4
    halves = [D.TrainSet(items, OWN, 3, aug, seed=1, batch_size=2, start=3, stop=5,
                         rank=r, world=2) for r in range(2)]
    for k in range(4):
        x, y = one[k]
        it, j = divmod(k, 2)
        x2, y2 = halves[j][it]
        assert x.shape == (3, 33, 33) and y.shape == (33, 33) and y.dtype.is_floating_point is False
        assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert np.array_equal(one[1][1], one[1][1])


def test_training_facts():
    assert D.training_facts("cityscapes")["rotate"] is False
    f = D.training_facts("ade20k")
    assert f["rotate"] and f["blur"] and f["crop_size"] == 473 and f["iters"] == 150_000
    assert D.training_facts("voc")["iters"] == 30_000


def test_ade20k_training_and_cityscapes_train_layouts(tmp_path):
    ade = tmp_path / "ADEChallengeData2016"
    shutil.copytree(SAMPLES / "ADEChallengeData2016" / "images" / "validation",
                    ade / "images" / "training")
    shutil.copytree(SAMPLES / "ADEChallengeData2016" / "annotations" / "validation",
                    ade / "annotations" / "training")
    items = D.training_samples("ade20k", tmp_path)
    assert len(items) == 3 and all(s.label.parent.name == "training" for s in items)
    cs = tmp_path / "cityscapes"
    shutil.copytree(SAMPLES / "cityscapes" / "leftImg8bit" / "val", cs / "leftImg8bit" / "train")
    shutil.copytree(SAMPLES / "cityscapes" / "gtFine" / "val", cs / "gtFine" / "train")
    items = D.training_samples("cityscapes", tmp_path)
    assert len(items) == 1 and items[0].label.name.endswith("_gtFine_labelIds.png")
    # labelIds go through the official table: values 0..18 and 255 only
    values = D.scan_labels(items, "cityscapes", 19, progress=False)
    assert values.max() == 255 and set(values.tolist()) - {255} <= set(range(19))
    x, y = D.TrainSet(items, "cityscapes", 19, A.recipe("none", 65), seed=0, batch_size=1,
                      start=0, stop=1)[0]
    assert set(np.unique(y.numpy()).tolist()) <= set(range(19)) | {255}
