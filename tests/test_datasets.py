"""psp_torch.datasets on the real samples (tests/data/samples): layouts, pairing, label conventions."""
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from psp_torch import datasets as ds
from psp_torch.datasets import cityscapes, listfile

SAMPLES = Path(__file__).parent / "data" / "samples"


def test_voc_pairs_and_palette_indices():
    items = ds.get("voc").samples(SAMPLES, "val")
    assert [s.name for s in items] == ["2007_000033", "2007_000129"]
    assert all(s.image.name == s.name + ".jpg" and s.label.name == s.name + ".png" for s in items)
    lab = ds.get("voc").read_label(items[0].label, 21)
    assert lab.dtype == np.uint8 and set(np.unique(lab)) == {0, 1, 255}
    assert set(np.unique(ds.get("voc").read_label(items[1].label, 21))) == {0, 2, 15, 255}
    # OpenCV would hand back the palette colours, not the class indices
    bgr = cv2.imread(str(items[0].label), cv2.IMREAD_UNCHANGED)
    assert bgr.ndim == 3 and tuple(bgr[lab == 255][0]) == (192, 224, 224)
    img = ds.read_image(items[0].image)
    assert img.shape == lab.shape + (3,) and img.dtype == np.uint8


def test_voc_test_split_has_no_labels(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2012"
    shutil.copytree(SAMPLES / "VOC2012", root)
    (root / "ImageSets/Segmentation/test.txt").write_text("2007_000033\n")
    items = ds.get("voc").samples(tmp_path, "test")           # found under VOCdevkit/VOC2012
    assert len(items) == 1 and items[0].label is None


def test_ade20k_shift_other_to_ignore():
    items = ds.get("ade20k").samples(SAMPLES, "val")
    assert [s.name for s in items] == [f"ADE_val_0000000{i}" for i in (1, 2, 3)]
    raw = np.array(Image.open(items[2].label))
    lab = ds.get("ade20k").read_label(items[2].label, 150)
    assert np.array_equal(lab == 255, raw == 0)
    assert np.array_equal(lab[raw > 0], raw[raw > 0] - 1)
    assert lab.shape == ds.read_image(items[2].image).shape[:2] == (300, 400)


def test_cityscapes_label_ids_mapped_to_train_ids():
    items = ds.get("cityscapes").samples(SAMPLES, "val")
    assert len(items) == 1
    s = items[0]
    assert s.name == "frankfurt_000000_000294_leftImg8bit"
    assert s.label.name == "frankfurt_000000_000294_gtFine_labelIds.png"   # no labelTrainIds
    raw = np.array(Image.open(s.label))
    lab = ds.get("cityscapes").read_label(s.label, 19)
    for label_id, train_id in [(7, 0), (8, 1), (11, 2), (17, 5), (20, 7), (21, 8), (23, 10),
                               (13, 4), (24, 11), (26, 13)]:
        assert np.all(lab[raw == label_id] == train_id)
    for void in (1, 2, 3, 4):
        assert np.all(lab[raw == void] == 255)
    assert cityscapes.LUT[33] == 18 and cityscapes.LUT[34] == 255


def test_cityscapes_prefers_label_train_ids(tmp_path):
    shutil.copytree(SAMPLES / "cityscapes", tmp_path / "cityscapes")
    gt = tmp_path / "cityscapes/gtFine/val/frankfurt"
    train = np.full((128, 256), 3, np.uint8)
    train[0, 0] = 255
    Image.fromarray(train).save(gt / "frankfurt_000000_000294_gtFine_labelTrainIds.png")
    (s,) = ds.get("cityscapes").samples(tmp_path, "val")
    assert s.label.name.endswith("labelTrainIds.png")
    assert np.array_equal(ds.get("cityscapes").read_label(s.label, 19), train)   # used as it is


def test_authors_list_file(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("/images/validation/ADE_val_00000002.jpg annotations/validation/"
                   "ADE_val_00000002.png\n\nimages/validation/ADE_val_00000001.jpg\n")
    items = listfile.read_list(SAMPLES / "ADEChallengeData2016", lst)
    assert [s.name for s in items] == ["images/validation/ADE_val_00000002",   # as listed
                                       "images/validation/ADE_val_00000001"]
    assert items[0].label.is_file() and items[1].label is None
    lst.write_text("a b c\n")
    with pytest.raises(ds.DatasetError, match="list.txt:1"):
        listfile.read_list(SAMPLES, lst)


def test_missing_files_are_named(tmp_path):
    shutil.copytree(SAMPLES / "VOC2012", tmp_path / "VOC2012")
    (tmp_path / "VOC2012/SegmentationClass/2007_000129.png").unlink()
    (tmp_path / "VOC2012/JPEGImages/2007_000033.jpg").write_bytes(b"")
    bad = ds.missing_files(ds.get("voc").samples(tmp_path, "val"))
    assert len(bad) == 2
    assert any("2007_000129.png (missing)" in b for b in bad)
    assert any("2007_000033.jpg (unreadable or empty)" in b for b in bad)
    with pytest.raises(ds.DatasetError, match="cannot read image"):
        ds.read_image(tmp_path / "VOC2012/JPEGImages/2007_000033.jpg")


def test_grey_image_becomes_three_channels(tmp_path):
    grey = (np.arange(20 * 30) % 256).astype(np.uint8).reshape(20, 30)
    Image.fromarray(grey).save(tmp_path / "g.png")
    img = ds.read_image(tmp_path / "g.png")
    assert img.shape == (20, 30, 3) and all(np.array_equal(img[..., c], grey) for c in range(3))


@pytest.mark.parametrize("rel", ["VOC2012/JPEGImages/2007_000033.jpg",
                                 "ADEChallengeData2016/images/validation/ADE_val_00000001.jpg",
                                 "cityscapes/leftImg8bit/val/frankfurt/"
                                 "frankfurt_000000_000294_leftImg8bit.png"])
def test_images_are_rgb(rel):
    p = SAMPLES / rel
    assert np.array_equal(ds.read_image(p), np.array(Image.open(p).convert("RGB")))


def test_label_values_outside_convention_are_rejected(tmp_path):
    Image.fromarray(np.full((4, 4), 30, np.uint8)).save(tmp_path / "bad.png")
    with pytest.raises(ds.DatasetError, match=r"bad.png: label values \[30\]"):
        ds.get("voc").read_label(tmp_path / "bad.png", 21)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ds.DatasetError, match="single-channel"):
        ds.get("voc").read_label(tmp_path / "rgb.png", 21)


@pytest.mark.parametrize("dataset,n", [("voc", 21), ("ade20k", 150), ("cityscapes", 19)])
def test_dataset_ids_round_trip(dataset, n):
    pred = np.arange(n).reshape(1, n)
    ids = ds.get(dataset).to_dataset_ids(pred)
    assert ids.dtype == np.uint8
    assert np.array_equal(ds.get(dataset).from_dataset_ids(ids), pred)
    if dataset == "ade20k":
        assert ids.min() == 1 and ids.max() == 150
    if dataset == "cityscapes":
        assert ids[0, 0] == 7 and ids[0, 18] == 33


def test_unknown_layout_is_reported(tmp_path):
    with pytest.raises(ds.DatasetError, match="no 'leftImg8bit'"):
        ds.get("cityscapes").samples(tmp_path)


def test_cityscapes_instance_maps_beside_the_labels(tmp_path):
    (s,) = ds.get("cityscapes").samples(SAMPLES, "val")
    assert s.instances.name == "frankfurt_000000_000294_gtFine_instanceIds.png"
    lab, inst = ds.get("cityscapes").read_ground_truth(s, 19)
    raw = np.array(Image.open(s.instances))
    assert inst.shape == lab.shape and set(np.unique(inst // 1000)) == {-1, 11, 13}
    assert np.array_equal(inst >= 0, raw > 1000)             # persons and cars of the sample
    assert np.all(lab[inst >= 0] == inst[inst >= 0] // 1000)  # an instance lies on its class
    # an authors' list file: the instance file is found beside the listed label
    lst = tmp_path / "list.txt"
    lst.write_text("leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png "
                   "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png\n")
    (t,) = ds.get("cityscapes").list_samples(SAMPLES / "cityscapes", lst)
    assert t.instances == s.instances
    # no instance file: label only, no error
    shutil.copytree(SAMPLES / "cityscapes", tmp_path / "cityscapes")
    for f in (tmp_path / "cityscapes").rglob("*_instanceIds.png"):
        f.unlink()
    (u,) = ds.get("cityscapes").samples(tmp_path, "val")
    lab2, none = ds.get("cityscapes").read_ground_truth(u, 19)
    assert none is None and np.array_equal(lab2, lab)


def test_cityscapes_instance_map_of_another_size_is_an_error(tmp_path):
    shutil.copytree(SAMPLES / "cityscapes", tmp_path / "cityscapes")
    (s,) = ds.get("cityscapes").samples(tmp_path, "val")
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(s.instances)
    with pytest.raises(ds.DatasetError, match="instanceIds.png: instance map is 4x4"):
        ds.get("cityscapes").read_ground_truth(s, 19)


def test_predicted_ids_naming_no_class_read_back_as_255():
    ade = ds.get("ade20k").from_dataset_ids(np.array([0, 1, 150], np.uint8))
    assert ade.tolist() == [255, 0, 149]
    cs = ds.get("cityscapes").from_dataset_ids(np.array([0, 7, 29, 33], np.uint8))
    assert cs.tolist() == [255, 0, 255, 18]


def test_read_back_predictions_outside_the_dataset_ids_name_the_file(tmp_path):
    from pspnet_caffe.eval.outputs import Writer
    for dataset, ids, ok in [("ade20k", [0, 1, 150], [255, 0, 149]), ("ade20k", [151], None),
                             ("voc", [0, 20], [0, 20]), ("voc", [255], None),
                             ("cityscapes", [0, 7, 33], [255, 0, 18]), ("cityscapes", [34], None)]:
        w = Writer(tmp_path / dataset, dataset)
        w.label_path("x").parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.array([ids], np.uint8)).save(w.label_path("x"))
        if ok is None:
            with pytest.raises(ds.DatasetError, match=r"x\.png: prediction ids \[\d+\] are not"):
                w.read_prediction("x")
        else:
            assert w.read_prediction("x").ravel().tolist() == ok
