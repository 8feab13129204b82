"""The protocol as a Python API (eval/segmenter.py): equal to `eval/run.py --image` label for
label, defaults from the model's meta, every kind of image input, folders and lists, strips
chosen and forced, probabilities, colours and overlays."""
import numpy as np
import pytest
import torch
from PIL import Image

from pspnet_caffe.eval import Segmenter, protocol_settings
from pspnet_caffe.eval import run as eval_run
from psp_torch.datasets import read_png_values
from pspnet_caffe.eval.protocol import predict, segment_counted
from psp_torch import datasets
from psp_torch.datasets import MS_SCALES
from test_eval_run import SAMPLES, _tiny_caffe_net
from test_strips import Local, _image


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny_caffe_net(tmp_path_factory.mktemp("seg"), 21)


def _photo(path, shape=(45, 61), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_image(shape, seed)).save(path)
    return path


@pytest.mark.parametrize("scales", [None, (0.5, 1.25)])
def test_api_equals_the_image_cli_label_for_label(tiny, tmp_path, capsys, scales):
    img = SAMPLES / "VOC2012/JPEGImages/2007_000033.jpg"
    argv = ["--weights", tiny, "--dataset", "voc", "--image", img, "--out", tmp_path]
    small = {}
    if scales:          # one scale in one window (0.5: 41 < crop 65), one sliding (101)
        argv += ["--scales", ",".join(map(str, scales)), "--crop-size", "65", "--base-size", "80"]
        small = dict(crop_size=65, base_size=80)                # the tiny net takes 8k + 1
    assert eval_run.main([str(a) for a in argv]) == 0
    cli_labels = read_png_values(tmp_path / "labels/2007_000033.png")     # VOC ids = class ids
    result = Segmenter(tiny, dataset="voc", scales=scales, device="cpu", **small)(img)
    assert result.labels.shape == cli_labels.shape == (366, 500)
    assert np.array_equal(result.labels, cli_labels)
    assert len(np.unique(cli_labels)) > 1
    overlay = np.array(Image.open(tmp_path / "overlay/2007_000033.png"))
    assert np.array_equal(result.overlay(), overlay)
    assert "-> " in capsys.readouterr().out


def test_defaults_come_from_the_meta_and_the_dataset():
    ade = datasets.get("ade20k").eval
    meta = {"num_classes": 150, "dataset": "ade20k", "crop_size": 473, "base_size": 512,
            "mean_rgb": [1.0, 2.0, 3.0], "palette": None}
    s = protocol_settings(meta, ms=True)
    assert (s.num_classes, s.crop_size, s.base_size) == (150, 473, 512)
    assert s.scales == tuple(ade.ms_scales) and s.flip and s.stride_rate == ade.stride_rate
    assert s.mean_rgb == (1.0, 2.0, 3.0)
    assert protocol_settings(meta).scales == (1.0,)
    own = protocol_settings({}, num_classes=3, crop_size=16)
    assert (own.num_classes, own.crop_size, own.base_size) == (3, 16, 512)
    with pytest.raises(ValueError, match="num_classes"):
        protocol_settings({})
    with pytest.raises(ValueError, match="150 classes, num_classes is 3"):
        protocol_settings(meta, num_classes=3)


def _segmenter(**kw):
    model = Local(classes=4)
    model.meta = {"num_classes": 4, "crop_size": 16, "base_size": 20}
    return Segmenter(model, device="cpu", **kw)


def test_path_pil_and_array_inputs_agree(tmp_path):
    path = _photo(tmp_path / "p.png")
    seg = _segmenter(scales=(0.7, 1.4))
    a = seg(path)
    assert a.source == str(path) and a.labels.dtype == np.uint8
    b = seg(Image.open(path))
    rgb = np.array(Image.open(path))
    c = seg(rgb)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.labels, c.labels)
    expect = predict(segment_counted(seg.model, rgb, seg.settings)[0])
    assert np.array_equal(c.labels, expect) and len(np.unique(expect)) > 1
    rgba = np.concatenate([rgb, np.zeros(rgb.shape[:2] + (1,), np.uint8)], 2)
    assert np.array_equal(seg(rgba).labels, c.labels)
    grey = rgb[:, :, 0]
    assert np.array_equal(seg(grey).labels, seg(np.repeat(grey[:, :, None], 3, 2)).labels)
    for bad, what in [(rgb.astype(np.float32), "dtype float32"), (rgb[:, :, :2], "shape"),
                      (np.zeros((0, 4, 3), np.uint8), "shape")]:
        with pytest.raises(ValueError, match=what):
            seg(bad)
    with pytest.raises(ValueError, match="cannot read image"):
        seg(tmp_path / "missing.png")


def test_run_over_a_folder_a_pattern_and_a_list(tmp_path):
    a = _photo(tmp_path / "in/a.png", seed=1)
    b = _photo(tmp_path / "in/b.jpg", (30, 20), seed=2)
    seg = _segmenter()
    folder = list(seg.run(tmp_path / "in"))
    assert [r.source for r in folder] == [str(a), str(b)]
    assert [r.labels.shape for r in folder] == [(45, 61), (30, 20)]
    mixed = list(seg.run([str(tmp_path / "in" / "*.jpg"), np.array(Image.open(a))]))
    assert [r.source for r in mixed] == [str(b), None]
    assert np.array_equal(mixed[1].labels, folder[0].labels)


def test_strips_chosen_forced_and_equal(monkeypatch):
    img = _image((37, 52), seed=4)
    whole = _segmenter(strip_rows=0)
    forced = _segmenter(strip_rows=5)
    assert not whole.uses_strips(10 ** 5, 10 ** 5) and forced.uses_strips(37, 52)
    auto = _segmenter()
    assert not auto.uses_strips(37, 52) and auto.uses_strips(10 ** 4, 10 ** 4)
    assert not _segmenter(probs=True).uses_strips(10 ** 4, 10 ** 4)
    calls = []
    from pspnet_caffe.eval import segmenter
    real = segmenter.segment_in_strips
    monkeypatch.setattr(segmenter, "segment_in_strips", lambda *a: calls.append(a) or real(*a))
    assert np.array_equal(forced(img).labels, whole(img).labels) and len(calls) == 1
    with pytest.raises(ValueError, match="matlab"):
        _segmenter(strip_rows=4, resize="opencv")


def test_probs_colour_overlay_and_top():
    seg = _segmenter(probs=True, scales=(0.8, 1.2))
    img = _image((21, 34), seed=6)
    r = seg(img)
    assert r.probs.shape == (4, 21, 34) and r.probs.dtype == np.float32
    assert np.allclose(r.probs.sum(0), 1, atol=1e-5)
    assert np.array_equal(r.labels, r.probs.argmax(0))
    assert _segmenter()(img).probs is None
    colour = r.colour()
    assert colour.shape == (21, 34, 3) and np.array_equal(colour[0, 0], r.palette[r.labels[0, 0]])
    expect = np.round(img.astype(np.float32) * 0.5 + colour.astype(np.float32) * 0.5)
    assert np.array_equal(r.overlay(), expect.astype(np.uint8))
    top = r.top(2)
    assert len(top) == 2 and top[0][1] >= top[1][1] and top[0][0].startswith("class ")
    assert abs(sum(s for _, s in r.top(10)) - 1) < 1e-9


def test_a_loaded_model_moves_to_the_device_in_eval_mode():
    model = Local(classes=4).train()
    model.meta = {"num_classes": 4, "crop_size": 16, "base_size": 20}
    seg = Segmenter(model, device="cpu", ms=True)
    assert not seg.model.training and seg.settings.scales == MS_SCALES
    assert next(seg.model.parameters()).device == torch.device("cpu")
