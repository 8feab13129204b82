"""psp_torch.PSPNet: the clean model against the Caffe oracle and the released prototxts."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import oracle
import psp_torch
from caffe_proto import load_prototxt
from conftest import DATA
from psp_torch.caffe.read_config import config_from_net
from psp_torch.config import PSPNetConfig, preset_config
from psp_torch.caffe.names import layer_keys, state_dict_key_to_caffe
from psp_torch.pspnet import PSPNet

PROTOTXT = DATA / "prototxt"
RELEASED = {
    "pspnet50_ade20k": ("pspnet50_ADE20K_473.prototxt", (1, 150, 473, 473)),
    "pspnet101_voc2012": ("pspnet101_VOC2012_473.prototxt", (1, 21, 473, 473)),
    "pspnet101_cityscapes": ("pspnet101_cityscapes_713.prototxt", (1, 19, 713, 713)),
}
# Bound on max |ours - Caffe| / max |Caffe| per blob (float32 summation order, see issue).
BOUND = {"nets/pspnet50_ade20k_slim": 2e-4, "nets/pspnet101_voc_slim": 1e-3,
         "nets/pspnet101_cityscapes_slim": 1e-3}
MIN_ARGMAX_AGREEMENT = 0.995


def _error_profile(ours: dict, stored: dict) -> dict:
    """{stored key: max |ours - Caffe| / max |Caffe|} for every blob both sides have."""
    prof = {}
    for key, expected in stored.items():
        name = key.split("@")[0]
        if name in ours:
            got = oracle.compare(ours[name], key, expected)
            assert got.shape == expected.shape, (key, got.shape, expected.shape)
            prof[key] = float(np.abs(got - expected).max() / np.abs(expected).max())
    return prof


@pytest.fixture(scope="module", params=[c for c in oracle.cases("nets")], ids=lambda c: c.name)
def slim(request):
    case = request.param
    model = psp_torch.from_caffe(case.prototxt, case.caffemodel)
    stored = case.blobs()
    with torch.no_grad():
        ours = {k: v.numpy() for k, v in model.forward_blobs(torch.from_numpy(stored["data"])).items()}
    return case, model, stored, ours


def test_slim_oracle_every_blob_within_bound(slim):
    case, _, stored, ours = slim
    prof = _error_profile(ours, stored)
    assert set(prof) == set(stored) - {"data"}, sorted(set(stored) - set(prof))
    bad = {k: e for k, e in prof.items() if not e <= BOUND[case.name]}
    profile = "\n".join(f"  {k}: {e:.2e}" for k, e in prof.items())
    assert not bad, f"{case.name}: blobs above {BOUND[case.name]:g}: {bad}\nprofile:\n{profile}"


def test_slim_oracle_conv6_and_argmax(slim):
    case, model, stored, ours = slim
    for name in ("conv6", "conv6_interp"):
        key = name if name in stored else f"{name}@sub7"
        expected = stored[key]
        got = oracle.compare(ours[name], key, expected)
        err = np.abs(got - expected).max() / np.abs(expected).max()
        assert err <= BOUND[case.name], (name, err)
    key = "conv6_interp" if "conv6_interp" in stored else "conv6_interp@sub7"
    expected = stored[key]
    out = ours["conv6_interp"]          # = model(x): see test_other_sizes_pool_like_caffe...
    assert out.shape[-2:] == stored["data"].shape[-2:]
    agree = (oracle.compare(out, key, expected).argmax(1) == expected.argmax(1)).mean()
    assert agree >= MIN_ARGMAX_AGREEMENT, agree


def test_slim_prototxt_config_is_released_divided_by_16():
    for case, preset in [("pspnet50_ade20k_slim", "pspnet50_ade20k"),
                         ("pspnet101_voc_slim", "pspnet101_voc2012"),
                         ("pspnet101_cityscapes_slim", "pspnet101_cityscapes")]:
        cfg = config_from_net(load_prototxt(DATA / "oracle" / "nets" / case / "deploy.prototxt"))
        full = preset_config(preset)
        assert cfg.blocks == full.blocks and cfg.num_classes == full.num_classes
        assert cfg.stride_on_reduce == full.stride_on_reduce and cfg.crop_size == full.crop_size
        assert cfg.stem_widths == tuple(w // 16 for w in full.stem_widths)
        assert cfg.out_widths == tuple(w // 16 for w in full.out_widths)
        assert cfg.ppm_width == 32 and cfg.head_width == 32


@pytest.mark.parametrize("preset", sorted(RELEASED))
def test_released_prototxt_gives_the_preset_config(preset):
    net = load_prototxt(PROTOTXT / RELEASED[preset][0])
    cfg = config_from_net(net)
    assert cfg == preset_config(preset)
    assert cfg.stride_on_reduce == (preset == "pspnet50_ade20k")
    assert cfg.pool_kernels == ((60, 30, 20, 10) if cfg.crop_size == 473 else (90, 45, 30, 15))


def _blob_count_from_prototxt(net) -> int:
    """Number of Caffe blob values a deploy net needs, by channel propagation (independent of PSPNet)."""
    channels = {"data": net.inputs["data"][1]}
    total = 0
    for layer in net.layers:
        p = layer.param
        if layer.type == "Convolution":
            cp = p.convolution_param
            cin = channels[layer.bottom[0]]
            k = cp.kernel_size[0]
            total += cp.num_output * cin * k * k + (cp.num_output if cp.bias_term else 0)
            channels[layer.top[0]] = cp.num_output
        elif layer.type == "BN":
            total += 4 * channels[layer.bottom[0]]
        elif layer.type == "Concat":
            channels[layer.top[0]] = sum(channels[b] for b in layer.bottom)
        else:
            channels[layer.top[0]] = channels[layer.bottom[0]]
    return total


@pytest.mark.parametrize("preset", sorted(RELEASED))
def test_released_prototxt_builds_same_size_and_output_shape(preset):
    prototxt, out_shape = RELEASED[preset]
    net = load_prototxt(PROTOTXT / prototxt)
    with torch.device("meta"):           # full size, no memory, no arithmetic
        model = psp_torch.from_caffe(PROTOTXT / prototxt)
        n_values = sum(t.numel() for k, t in model.state_dict().items()
                       if not k.endswith("num_batches_tracked"))
        out = model(torch.empty(net.inputs["data"]))
    assert n_values == _blob_count_from_prototxt(net)
    assert tuple(out.shape) == out_shape
    factory = getattr(psp_torch, preset)
    with torch.device("meta"):
        assert sum(p.numel() for p in factory().parameters()) == \
            sum(p.numel() for p in model.parameters())


def test_released_prototxt_same_parameter_count_as_caffenet():
    graph = pytest.importorskip("psp_torch.caffe.graph")
    for preset, (prototxt, out_shape) in RELEASED.items():
        cnet = graph.CaffeNet.from_files(PROTOTXT / prototxt)
        n_c = sum(t.numel() for t in cnet.state_dict().values())
        del cnet
        with torch.device("meta"):
            model = psp_torch.from_caffe(PROTOTXT / prototxt)
            n_p = sum(t.numel() for k, t in model.state_dict().items()
                      if not k.endswith("num_batches_tracked"))
        assert n_c == n_p, preset
        shapes = graph.CaffeNet(load_prototxt(PROTOTXT / prototxt)).infer_shapes()
        assert shapes["conv6_interp"] == out_shape


def test_other_sizes_pool_like_caffe_with_the_training_kernels():
    """At a non-crop input PSPNet equals Caffe running the deploy net with the same fixed
    pooling kernels and the Interp sizes of that input (CaffeNet as Caffe's stand-in)."""
    graph = pytest.importorskip("psp_torch.caffe.graph")
    case = oracle.cases("nets")[1]
    assert case.name == "nets/pspnet101_voc_slim"
    text = case.prototxt.read_text()
    # 233 x 265 -> stage 5 is 30 x 34 (8k+1 sides, so zoom 8 gives back the input size)
    text = text.replace("input_dim: 473\ninput_dim: 473", "input_dim: 233\ninput_dim: 265")
    text = text.replace("height: 60", "height: 30").replace("width: 60", "width: 34")
    assert "input_dim: 265" in text and text.count("width: 34") == 4
    cnet = graph.CaffeNet(load_prototxt(text), case.caffemodel).eval()
    model = psp_torch.from_caffe(case.prototxt, case.caffemodel)
    x = torch.from_numpy(case.blobs()["data"][:, :, 100:333, 50:315].copy())
    with torch.no_grad():
        ref = cnet(data=x, outputs=["conv5_3_pool1", "conv5_3_pool6", "conv6_interp"])
        ours = model.forward_blobs(x)
    assert ref["conv5_3_pool1"].shape[-2:] == (1, 1)      # kernel 60 on 30 x 34: one window
    assert ref["conv5_3_pool6"].shape[-2:] == (3, 4)      # kernel 10, ceil arithmetic
    for name in ("conv5_3_pool1", "conv5_3_pool6", "conv6_interp"):
        err = float((ours[name] - ref[name]).abs().max() / ref[name].abs().max())
        assert ours[name].shape == ref[name].shape and err <= 1e-3, (name, err)
    with torch.no_grad():
        assert torch.equal(model(x), ours["conv6_interp"])


def test_pspnet101_parameter_count():
    with torch.device("meta"):
        m = psp_torch.pspnet101_voc2012()
    # weights and BN slopes/biases of the release's ResNet-101 PSPNet (21 classes)
    assert sum(p.numel() for p in m.parameters()) == 65_708_501


def test_factories_carry_metadata():
    with torch.device("meta"):
        m = psp_torch.pspnet101_cityscapes()
    meta = m.meta
    assert meta["dataset"] == "cityscapes" and meta["num_classes"] == 19
    assert meta["crop_size"] == 713 and meta["base_size"] == 2048
    assert meta["mean_rgb"] == [123.68, 116.779, 103.939] and meta["channel_order"] == "BGR"
    if meta["class_names"] is not None:
        assert len(meta["class_names"]) == 19 and len(meta["palette"]) == 19


def _slim_config(name="pspnet101_voc_slim", aux=0) -> PSPNetConfig:
    cfg = config_from_net(load_prototxt(DATA / "oracle" / "nets" / name / "deploy.prototxt"))
    return cfg.with_aux(aux) if aux else cfg


def test_train_mode_returns_aux_and_eval_returns_scores():
    torch.manual_seed(0)
    model = PSPNet(_slim_config(aux=16))
    x = torch.randn(2, 3, 65, 81)
    out = model.train()(x)
    assert set(out) == {"out", "aux"}
    assert out["out"].shape == out["aux"].shape == (2, 21, 65, 81)
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 21, 65, 81)


def test_other_input_sizes_keep_size_and_fixed_pyramid_kernels():
    torch.manual_seed(0)
    model = PSPNet(_slim_config()).eval()
    with torch.no_grad():
        for h, w in [(97, 129), (100, 60), (473, 233)]:
            assert model(torch.randn(1, 3, h, w)).shape == (1, 21, h, w)
    assert [s.kernel for s in model.ppm.stages] == [60, 30, 20, 10]


def test_batch_rows_are_independent():
    torch.manual_seed(0)
    model = PSPNet(_slim_config("pspnet50_ade20k_slim")).eval()
    x = torch.randn(2, 3, 73, 73) * 50
    with torch.no_grad():
        both = model(x)
        one = model(x[1:])
    assert torch.allclose(both[1:], one, rtol=0, atol=1e-4 * float(one.abs().max()))


def test_at_size_8k_plus_1_output_is_caffe_zoom8():
    """Upsampling to the input size equals Caffe's zoom 8 when the input side is 8k+1."""
    from psp_torch.layers.interp import interp, interp_output_size
    torch.manual_seed(0)
    model = PSPNet(_slim_config()).eval()
    x = torch.randn(1, 3, 81, 81) * 50
    with torch.no_grad():
        blobs = model.forward_blobs(x)
    conv6 = blobs["conv6"]
    assert interp_output_size(*conv6.shape[-2:], zoom_factor=8) == (81, 81)
    assert torch.equal(interp(conv6, (81, 81)), blobs["conv6_interp"])


# --- names ---------------------------------------------------------------------------------

def test_names_cover_the_state_dict_exactly_once():
    cfg = _slim_config(aux=16)
    keys = state_dict_key_to_caffe(cfg)
    with torch.device("meta"):
        sd = PSPNet(cfg).state_dict()
    expected = {k for k in sd if not k.endswith("num_batches_tracked")}
    assert set(keys) == expected
    assert len({(c, i) for c, i in keys.values()}) == len(keys)


def test_names_are_stable():
    keys = {lk.caffe: lk.keys for lk in layer_keys(preset_config("pspnet101_voc2012", aux=True))}
    assert keys["conv1_1_3x3_s2"] == ("stem.conv1.weight",)
    assert keys["conv1_3_3x3/bn"] == ("stem.bn3.weight", "stem.bn3.bias",
                                      "stem.bn3.running_mean", "stem.bn3.running_var")
    assert keys["conv3_4_1x1_reduce"] == ("layer2.3.conv1.weight",)
    assert keys["conv4_23_3x3"] == ("layer3.22.conv2.weight",)
    assert keys["conv5_1_1x1_proj/bn"][0] == "layer4.0.downsample.1.weight"
    assert keys["conv5_3_pool6_conv"] == ("ppm.stages.3.conv.weight",)
    assert keys["conv5_4/bn"][3] == "head.bn.running_var"
    assert keys["conv6"] == ("classifier.weight", "classifier.bias")
    assert keys["conv4_24"] == ("aux.conv.weight",)
    assert keys["conv6_1"] == ("aux.classifier.weight", "aux.classifier.bias")


# --- preprocess ----------------------------------------------------------------------------

def test_preprocess_is_bgr_minus_mean():
    img = np.array([[[10, 20, 30], [255, 0, 128]]], dtype=np.uint8)      # 1x2 RGB
    x = psp_torch.preprocess(img)
    assert x.shape == (1, 3, 1, 2) and x.dtype == torch.float32
    r, g, b = np.float32([123.68, 116.779, 103.939])
    f = np.float32
    expected = np.array([[[f(30) - b, f(128) - b]], [[f(20) - g, f(0) - g]],
                         [[f(10) - r, f(255) - r]]], np.float32)
    np.testing.assert_array_equal(x[0].numpy(), expected)


def test_preprocess_grey_and_errors():
    grey = np.full((3, 4), 100, np.uint8)
    x = psp_torch.preprocess(grey)
    assert x.shape == (1, 3, 3, 4)
    assert float(x[0, 0, 0, 0]) == pytest.approx(100 - 103.939, abs=1e-4)
    with pytest.raises(ValueError, match="uint8"):
        psp_torch.preprocess(np.zeros((3, 4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        psp_torch.preprocess(np.zeros((3, 4, 5), np.uint8))


def test_preprocess_matches_the_oracle_input_convention():
    """The oracle's image input is (uint8 RGB image - mean) in BGR: preprocess gives the same."""
    rng = np.random.RandomState(0)
    rgb = rng.randint(0, 256, (5, 6, 3)).astype(np.uint8)
    bgr_minus_mean = rgb[:, :, ::-1].astype(np.float32) - np.float32([103.939, 116.779, 123.68])
    np.testing.assert_array_equal(psp_torch.preprocess(rgb)[0].numpy(),
                                  bgr_minus_mean.transpose(2, 0, 1))


# --- .pth io -------------------------------------------------------------------------------

def test_save_and_load_roundtrip(tmp_path):
    from psp_torch.io import save_pspnet
    from pspnet_caffe.converter.synthetic import random_pspnet
    model = random_pspnet(_slim_config("pspnet50_ade20k_slim"), seed=3,
                          meta={"name": "slim", "crop_size": 473})
    path = save_pspnet(model, tmp_path / "m.pth")
    loaded = psp_torch.load(path)
    assert not loaded.training and loaded.meta["name"] == "slim"
    assert loaded.config == model.config
    x = torch.randn(1, 3, 57, 57)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert list(tmp_path.iterdir()) == [path]            # no temporary file left


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, (f"touch {_Evil.marker}",))


def test_load_refuses_code_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    _Evil.marker = marker
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"format": "psp_torch.pth/1", "kind": "pspnet", "x": _Evil()}, f, protocol=2)
    with pytest.raises(ValueError, match="refused"):
        psp_torch.load(path)
    assert not marker.exists()


def test_load_rejects_foreign_pth(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match="not a psp_torch model file"):
        psp_torch.load(path)


def test_fuse_method_folds_every_bn_and_stays_close():
    """PSPNet.fuse(): a BN-free copy within 1e-4 of the fp32 output's scale; the original untouched."""
    import torch
    from torch import nn

    import psp_torch

    model = psp_torch.from_caffe(
        "tests/data/oracle/nets/pspnet50_ade20k_slim/deploy.prototxt",
        "tests/data/oracle/nets/pspnet50_ade20k_slim/weights.caffemodel")
    fused = model.fuse()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(1, 3, 97, 97, generator=torch.Generator().manual_seed(0)) * 50
    with torch.no_grad():
        ref, out = model(x), fused(x)
    assert (ref - out).abs().max() <= 1e-4 * ref.abs().max()


def test_from_caffe_and_from_files_follow_psp_torch_load(tmp_path):
    """One convention for every way to get a model: eval mode and the full meta."""
    from pspnet_caffe.converter.convert import convert
    case = next(c for c in oracle.cases("nets") if c.name == "nets/pspnet101_voc_slim")
    model = psp_torch.from_caffe(case.prototxt, case.caffemodel)
    loaded = psp_torch.load(convert(case.caffemodel, case.prototxt, out=tmp_path / "m.pth",
                                    log=lambda *a: None))
    assert not model.training and not loaded.training
    expected = {k: v for k, v in loaded.meta.items() if k != "converter_version"}
    assert model.meta == expected
    assert model.meta["name"] == "pspnet101_voc2012_custom_width"
    assert model.meta["class_names"][15] == "person"

    cnet = psp_torch.CaffeNet.from_files(case.prototxt, case.caffemodel)
    assert not cnet.training and not any(m.training for m in cnet.modules())
    assert cnet.meta["source"] == "weights.caffemodel"
    assert cnet.meta["source_sha256"] == loaded.meta["source_sha256"]
