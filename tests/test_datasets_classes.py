"""Class names and palettes of the three benchmarks (psp_torch.datasets, one module each)."""
import numpy as np
import pytest

from psp_torch.datasets import get, voc_colormap
from psp_torch.presets import BY_DATASET

CLASS_NAMES = {n: get(n).classes for n in ("voc", "ade20k", "cityscapes")}
PALETTES = {n: get(n).palette for n in ("voc", "ade20k", "cityscapes")}


@pytest.mark.parametrize("dataset", ["voc", "ade20k", "cityscapes"])
def test_one_name_and_colour_per_class(dataset):
    n = BY_DATASET[dataset].num_classes
    assert len(CLASS_NAMES[dataset]) == n == len(set(CLASS_NAMES[dataset]))
    p = PALETTES[dataset]
    assert p.shape == (n, 3) and p.dtype == np.uint8 and not p.flags.writeable


def test_voc_names_and_bit_interleaved_colormap():
    names = CLASS_NAMES["voc"]
    assert names[0] == "background" and names[15] == "person" and names[20] == "tvmonitor"
    cmap = voc_colormap(256)
    assert cmap[1].tolist() == [128, 0, 0] and cmap[15].tolist() == [192, 128, 128]
    assert cmap[20].tolist() == [0, 64, 128] and cmap[255].tolist() == [224, 224, 192]
    assert np.array_equal(PALETTES["voc"], cmap[:21])


def test_ade20k_objectinfo150_first_names_and_color150():
    names = CLASS_NAMES["ade20k"]
    assert names[:5] == ("wall", "building", "sky", "floor", "tree")
    assert names[8] == "windowpane" and names[12] == "person" and names[-1] == "flag"
    assert PALETTES["ade20k"][0].tolist() == [120, 120, 120]
    assert PALETTES["ade20k"][2].tolist() == [6, 230, 230]
    assert PALETTES["ade20k"][-1].tolist() == [92, 0, 255]


def test_cityscapes_train_ids_and_official_colours():
    names = CLASS_NAMES["cityscapes"]
    assert names[0] == "road" and names[13] == "car" and names[18] == "bicycle"
    p = PALETTES["cityscapes"]
    assert p[0].tolist() == [128, 64, 128] and p[10].tolist() == [70, 130, 180]
    assert p[11].tolist() == [220, 20, 60] and p[18].tolist() == [119, 11, 32]
