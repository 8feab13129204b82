"""pspnet_caffe.train core: schedule, CaffeSGD, multipliers, loss, BN, step, init; model variants.

CPU, slim models (the oracle's widths / 16), no clocks: work is bounded by counting iterations.
"""
from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import psp_torch
from conftest import DATA
from psp_torch.pspnet_bn import BatchNorm2d
from psp_torch.caffe.read_config import config_from_net
from psp_torch.config import PSPNetConfig, preset_config
from psp_torch.io import save_pspnet
from psp_torch.preprocess import preprocess
from psp_torch import datasets
from psp_torch.presets import BLOCKS, MULTIPLIERS
from psp_torch.pspnet import PSPNet
from pspnet_caffe.train.bn_statistics import (AllReduceBatchNorm2d, SyncBatchNorm2d, bn_warning, freeze_bn,
                                   sync_bn)
from pspnet_caffe.train.init import (InitError, backbone_key, caffe_init, load_backbone,
                                     model_from_arch, model_from_file)
from pspnet_caffe.train.loss import deep_supervision_loss
from pspnet_caffe.train.optim import CaffeSGD, make_optimizer, param_groups, set_lr
from pspnet_caffe.train.schedule import poly_lr
from pspnet_caffe.train.step import train_step


def slim_config(**kw) -> PSPNetConfig:
    """The oracle's slim PSPNet50 (every width / 16), at a small crop."""
    base = dict(num_classes=150, blocks=(3, 4, 6, 3), stem_widths=(4, 4, 8),
                mid_widths=(4, 8, 16, 32), out_widths=(16, 32, 64, 128), ppm_width=32,
                head_width=32, aux_width=16, crop_size=65, stride_on_reduce=True, dropout=0.0)
    base.update(kw)
    return PSPNetConfig(**base)


def slim_model(seed=0, **kw) -> PSPNet:
    torch.manual_seed(seed)
    model = PSPNet(slim_config(**kw))
    caffe_init(model)
    return model.train()


# --- schedule ---------------------------------------------------------------------------------

def test_poly_values():
    assert poly_lr(0.01, 0, 3) == 0.01
    assert poly_lr(0.01, 1, 3) == pytest.approx(0.01 * (2 / 3) ** 0.9, rel=1e-15)
    assert poly_lr(0.01, 2, 3) == pytest.approx(0.003720410580113015, rel=1e-12)  # oracle meta
    assert poly_lr(0.01, 1, 3) == pytest.approx(0.006942531626616071, rel=1e-12)
    assert poly_lr(0.01, 3, 3) == 0.0
    assert poly_lr(0.02, 75_000, 150_000, power=1.0) == pytest.approx(0.01)
    with pytest.raises(ValueError):
        poly_lr(0.01, 4, 3)
    with pytest.raises(ValueError):
        poly_lr(0.01, 0, 0)


# --- CaffeSGD ---------------------------------------------------------------------------------

def _hand_caffe(w, grads, lrs, momentum, wd):
    """Caffe's rule, written out: diff = g + wd*w; h = lr*diff + m*h; w -= h."""
    h = 0.0
    out = []
    for g, lr in zip(grads, lrs):
        h = lr * (g + wd * w) + momentum * h
        w = w - h
        out.append(w)
    return out


def test_caffe_sgd_matches_hand_computation_with_changing_lr():
    w0, grads, lrs = 1.5, [0.4, -0.2, 0.7, 0.1], [0.1, 0.05, 0.02, 0.01]
    p = nn.Parameter(torch.tensor([w0], dtype=torch.float64))
    opt = CaffeSGD([{"params": [p], "lr_mult": 10.0, "decay_mult": 1.0}], lr=0.0,
                   momentum=0.9, weight_decay=1e-2)
    expected = _hand_caffe(w0, grads, [10 * lr for lr in lrs], 0.9, 1e-2)
    for g, lr, want in zip(grads, lrs, expected):
        set_lr(opt, lr)
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        assert p.item() == pytest.approx(want, rel=1e-13)


def test_caffe_sgd_differs_from_torch_sgd_only_when_the_lr_changes():
    def run(kind, lrs):
        p = nn.Parameter(torch.tensor([1.5], dtype=torch.float64))
        opt = (CaffeSGD([p], lr=lrs[0], momentum=0.9, weight_decay=0.0) if kind == "caffe"
               else torch.optim.SGD([p], lr=lrs[0], momentum=0.9))
        for g, lr in zip([0.4, -0.2, 0.7], lrs):
            for group in opt.param_groups:
                group["lr"] = lr
            p.grad = torch.tensor([g], dtype=torch.float64)
            opt.step()
        return p.item()
    constant = [0.1, 0.1, 0.1]
    assert run("caffe", constant) == pytest.approx(run("torch", constant), rel=1e-14)
    changing = [0.1, 0.05, 0.01]
    assert abs(run("caffe", changing) - run("torch", changing)) > 1e-3
    # by hand: torch keeps buf = m*buf + g and steps lr*buf
    buf, w = 0.0, 1.5
    for g, lr in zip([0.4, -0.2, 0.7], changing):
        buf = 0.9 * buf + g
        w -= lr * buf
    assert run("torch", changing) == pytest.approx(w, rel=1e-13)


def test_caffe_sgd_decay_mult_zero_means_no_weight_decay():
    p = nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    opt = CaffeSGD([{"params": [p], "lr_mult": 1.0, "decay_mult": 0.0}], lr=0.1,
                   weight_decay=0.5)
    p.grad = torch.zeros_like(p)
    opt.step()
    assert p.item() == 2.0


# --- parameter groups -------------------------------------------------------------------------

def _groups_by_role(model, **kw):
    names = {id(p): n for n, p in model.named_parameters()}
    return {g["role"]: (g["lr_mult"], g["decay_mult"], {names[id(p)] for p in g["params"]})
            for g in param_groups(model, **kw)}


def test_param_groups_multipliers_on_a_released_config():
    with torch.device("meta"):
        model = PSPNet(preset_config("pspnet101_voc2012", aux=True))
    groups = _groups_by_role(model)
    assert {r: g[:2] for r, g in groups.items()} == MULTIPLIERS
    assert groups["new_bias"][2] == {"classifier.bias", "aux.classifier.bias"}
    new = groups["new"][2]
    assert {"classifier.weight", "head.conv.weight", "aux.conv.weight",
            "aux.classifier.weight"} | {f"ppm.stages.{j}.conv.weight" for j in range(4)} == new
    assert groups["new_bn"][2] == ({f"ppm.stages.{j}.bn.{s}" for j in range(4)
                                    for s in ("weight", "bias")}
                                   | {"head.bn.weight", "head.bn.bias", "aux.bn.weight",
                                      "aux.bn.bias"})
    backbone_convs = [n for n in groups["backbone"][2]]
    assert len(backbone_convs) == 3 + 3 * sum(BLOCKS[101]) + 4         # stem + blocks + projs
    assert len(groups["backbone_bn"][2]) == 2 * len(backbone_convs)
    every = set().union(*(g[2] for g in groups.values()))
    assert every == {n for n, _ in model.named_parameters()}
    # frozen BN: the fork gives BN slope/bias lr 0 -> not in any group
    frozen = _groups_by_role(model, freeze_bn=True)
    assert set(frozen) == {"backbone", "new", "new_bias"}


def test_make_optimizer_sets_group_lrs_and_torch_weight_decay():
    model = slim_model()
    opt = make_optimizer(model, "torch", lr=0.01, weight_decay=1e-4)
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(0.01 * g["lr_mult"])
        assert g["weight_decay"] == pytest.approx(1e-4 * g["decay_mult"])
    assert isinstance(make_optimizer(model), CaffeSGD)
    with pytest.raises(ValueError, match="caffe"):
        make_optimizer(model, "adam")


# --- loss -------------------------------------------------------------------------------------

def test_loss_is_main_plus_weighted_aux_over_valid_pixels():
    torch.manual_seed(1)
    out, aux = torch.randn(2, 5, 4, 3), torch.randn(2, 5, 4, 3)
    labels = torch.randint(0, 5, (2, 4, 3))
    labels[0, 0, :] = 255
    labels[1, 2, 1] = 255
    valid = labels != 255
    n = int(valid.sum())
    assert n == 24 - 4

    def ce(scores):
        logp = torch.log_softmax(scores.double(), dim=1)
        picked = logp.gather(1, labels.clamp(max=4)[:, None])[:, 0]
        return float(-(picked[valid]).sum() / n)
    total, main, a = deep_supervision_loss({"out": out, "aux": aux}, labels, aux_weight=0.4)
    assert float(main) == pytest.approx(ce(out), rel=1e-6)
    assert float(a) == pytest.approx(ce(aux), rel=1e-6)
    assert float(total) == pytest.approx(ce(out) + 0.4 * ce(aux), rel=1e-6)
    # no aux / weight 0: main only; a given normalizer replaces the count
    t0, _, a0 = deep_supervision_loss({"out": out, "aux": aux}, labels, aux_weight=0.0)
    assert float(t0) == pytest.approx(ce(out), rel=1e-6) and float(a0) == 0.0
    t1, m1, _ = deep_supervision_loss(out, labels, aux_weight=0.4, normalizer=2.0 * n)
    assert float(m1) == pytest.approx(ce(out) / 2, rel=1e-6)


def test_loss_scale_one_eighth_uses_every_8th_label_and_the_stride8_scores():
    torch.manual_seed(2)
    raw = torch.randn(1, 3, 5, 5)                           # stride-8 scores of a 33x33 crop
    from psp_torch.layers.interp import interp
    full = interp(raw, (33, 33))
    labels = torch.randint(0, 3, (1, 33, 33))
    _, main, _ = deep_supervision_loss({"out": full}, labels, aux_weight=0.4, loss_scale=1 / 8)
    direct = F.cross_entropy(raw, labels[:, ::8, ::8])
    assert float(main) == pytest.approx(float(direct), rel=1e-6)
    with pytest.raises(ValueError, match="loss_scale"):
        deep_supervision_loss({"out": full}, labels, aux_weight=0.4, loss_scale=0.3)


# --- BN ---------------------------------------------------------------------------------------

def test_bn_train_mode_is_the_forks_batch_norm_with_biased_moving_average():
    torch.manual_seed(3)
    bn = BatchNorm2d(3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([1.0, 2.0, 0.5]))
        bn.weight.copy_(torch.tensor([1.5, 0.5, 1.0]))
        bn.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    mean0, var0 = bn.running_mean.clone(), bn.running_var.clone()
    x = torch.randn(2, 3, 3, 2, dtype=torch.float32) * 2 + 1
    y = bn(x)
    m = x.mean(dim=(0, 2, 3))
    v = ((x - m[None, :, None, None]) ** 2).mean(dim=(0, 2, 3))          # biased
    want = ((x - m[None, :, None, None]) / torch.sqrt(v + 1e-5)[None, :, None, None]
            * bn.weight[None, :, None, None] + bn.bias[None, :, None, None])
    torch.testing.assert_close(y, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, 0.95 * mean0 + 0.05 * m, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(bn.running_var, 0.95 * var0 + 0.05 * v, rtol=1e-6, atol=1e-6)
    unbiased = v * 12 / 11
    assert not torch.allclose(bn.running_var, 0.95 * var0 + 0.05 * unbiased, rtol=1e-4)


def test_bn_eval_is_bit_identical_to_torch_and_frozen_uses_stored_statistics():
    torch.manual_seed(4)
    ours, plain = BatchNorm2d(4), nn.BatchNorm2d(4)
    with torch.no_grad():
        for t in (ours, plain):
            t.running_mean.copy_(torch.arange(4.0))
            t.running_var.copy_(torch.arange(1.0, 5.0))
            t.weight.copy_(torch.tensor([1.0, 2.0, 0.5, 1.5]))
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(ours.eval()(x), plain.eval()(x))
    model = nn.Sequential(ours)
    assert freeze_bn(model) == 1
    ours.train()
    before = ours.running_var.clone()
    assert torch.equal(ours(x), plain(x))
    assert torch.equal(ours.running_var, before)
    assert not ours.weight.requires_grad and not ours.bias.requires_grad


def test_sync_bn_without_a_process_group_keeps_the_forks_semantics():
    torch.manual_seed(5)
    a = slim_model(seed=5)
    b = slim_model(seed=5)
    sync_bn(b)
    # torch's SyncBatchNorm on CUDA; on CPU (which it and DDP refuse) the all-reduce BN
    assert any(isinstance(m, AllReduceBatchNorm2d) for m in b.modules())
    assert not any(isinstance(m, SyncBatchNorm2d) for m in b.modules())
    assert not any(type(m) is BatchNorm2d for m in b.modules())
    x = torch.randn(2, 3, 65, 65)
    ya, yb = a(x)["out"], b(x)["out"]
    torch.testing.assert_close(ya, yb, rtol=1e-4, atol=1e-4)
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-4, atol=1e-5, msg=k)


def test_bn_warning_counts_images_per_bn_batch():
    assert "fewer than 8" in bn_warning(2, frozen=False)
    assert bn_warning(8, frozen=False) is None and bn_warning(2, frozen=True) is None


# --- step: a slim model learns the two sample images ---------------------------------------

def _two_images(side):
    with np.load(DATA / "oracle" / "train" / "data.npz") as z:
        images, labels = z["images_rgb"], z["labels"]
    x = torch.cat([preprocess(cv2.resize(i, (side, side), interpolation=cv2.INTER_LINEAR))
                   for i in images])
    y = torch.from_numpy(np.stack([cv2.resize(l, (side, side), interpolation=cv2.INTER_NEAREST)
                                   for l in labels])).long()
    return x, y


def test_slim_model_learns_the_two_sample_images():
    """20 updates (counted, no clock) on the oracle's two ADE20K images at 49x49."""
    torch.manual_seed(0)
    model = slim_model(crop_size=49)
    x, y = _two_images(49)
    opt = make_optimizer(model, "caffe", lr=0.02)
    iters = 20
    log = [train_step(model, opt, x, y, iteration=it, max_iter=iters, base_lr=0.02,
                      aux_weight=0.4)
           for it in range(iters)]
    first, last = log[0], log[-1]
    assert all(math.isfinite(r["loss"]) for r in log)
    assert last["main"] < 0.4 * first["main"], [round(r["main"], 3) for r in log]
    assert last["aux"] < 0.6 * first["aux"], [round(r["aux"], 3) for r in log]
    assert log[-1]["lr"] == pytest.approx(poly_lr(0.02, iters - 1, iters))
    # it predicts most labelled pixels of its training images (batch statistics: after 20
    # iterations the 0.95 moving averages still remember their start)
    with torch.no_grad():
        pred = model(x)["out"].argmax(1)
    valid = y != 255
    assert float((pred[valid] == y[valid]).float().mean()) > 0.6


def test_train_step_is_deterministic_on_cpu():
    x, y = _two_images(49)

    def run():
        model = slim_model(seed=7, crop_size=49)
        opt = make_optimizer(model)
        out = [train_step(model, opt, x, y, iteration=i, max_iter=3, base_lr=0.01,
                          aux_weight=0.4)["loss"]
               for i in range(3)]
        return out, model.state_dict()
    (l1, s1), (l2, s2) = run(), run()
    assert l1 == l2
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


# --- init -------------------------------------------------------------------------------------

def test_init_from_pth_keeps_every_weight_and_resets_classifiers_for_new_classes(tmp_path):
    src = slim_model(seed=8)
    path = save_pspnet(src, tmp_path / "m.pth", {"name": "slim", "num_classes": 150,
                                                 "class_names": ["c"] * 150})
    same, report = model_from_file(path)
    s0, s1 = src.state_dict(), same.state_dict()
    assert all(torch.equal(s0[k], s1[k]) for k in s0)
    assert same.training and not any("re-initialised" in line for line in report)

    torch.manual_seed(9)
    new, report = model_from_file(path, num_classes=7)
    assert new.config.num_classes == 7 and new.config.aux
    assert new.classifier.weight.shape[0] == 7 and new.aux.classifier.weight.shape[0] == 7
    reset = [line for line in report if "re-initialised" in line]
    assert len(reset) == 2 and "conv6 " in reset[0] and "conv6_1" in reset[1]
    assert "150 -> 7" in reset[0]
    s2 = new.state_dict()
    kept = [k for k in s0 if not k.startswith(("classifier.", "aux.classifier."))]
    assert all(torch.equal(s0[k], s2[k]) for k in kept)
    assert float(s2["classifier.bias"].abs().max()) == 0.0
    assert new.meta["num_classes"] == 7 and new.meta["class_names"] is None
    # a fine-tuned model saves and loads as any model file
    out = save_pspnet(new, tmp_path / "ft.pth")
    again = psp_torch.load(out)
    assert again.config == new.config


def test_init_from_pth_can_add_or_drop_the_aux_head(tmp_path):
    src = slim_model(seed=10, aux_width=0)
    path = save_pspnet(src, tmp_path / "noaux.pth", {"name": "slim"})
    model, report = model_from_file(path, aux=True)
    assert model.config.aux and any("aux head" in line and "random" in line for line in report)
    dropped, _ = model_from_file(save_pspnet(model, tmp_path / "aux.pth"), aux=False)
    assert not dropped.config.aux and dropped.aux is None


def test_init_refuses_what_is_not_a_pspnet_file(tmp_path):
    bad = tmp_path / "x.pth"
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(InitError, match="x.pth"):
        model_from_file(bad)
    with pytest.raises(InitError, match="no such file"):
        model_from_file(tmp_path / "missing.pth")


def _initmodel_layout(model: PSPNet) -> dict:
    """A synthetic state_dict in the layout of semseg's initmodel/resnet*_v2.pth for `model`."""
    torch.manual_seed(11)
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("stem."):
            name = key[len("stem."):]
        elif key.startswith("layer"):
            name = key
        else:
            continue
        out[name] = torch.randn_like(value.float()).abs().to(value.dtype) if value.is_floating_point() else value
    out["fc.weight"] = torch.randn(1000, model.config.out_widths[3])
    out["fc.bias"] = torch.randn(1000)
    return out


def test_backbone_in_initmodel_layout_is_mapped_and_re_expressed_for_bgr_input(tmp_path):
    model = PSPNet(slim_config(stride_on_reduce=False))
    src = _initmodel_layout(model)
    assert "conv1.weight" in src and "layer3.5.downsample.0.weight" not in src
    assert "layer3.0.downsample.1.running_var" in src and "bn3.weight" in src
    path = tmp_path / "resnet50_v2.pth"
    torch.save(src, path)
    report = load_backbone(model, path)
    assert "fc.bias" in report[0] and "fc.weight" in report[0]
    sd = model.state_dict()
    for key, value in src.items():
        target = backbone_key(key)
        if target is None:
            assert key.startswith("fc.")
        elif key not in ("conv1.weight", "bn1.running_mean"):
            assert torch.equal(sd[target], value), key
    # the stem's first conv + BN computes, on our input (BGR - release mean), what the
    # original computes on its input ((RGB - mean) / std), away from the zero-padded border
    img = np.random.default_rng(0).integers(0, 256, (17, 17, 3), dtype=np.uint8)
    ours_in = preprocess(img)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    theirs_in = (torch.from_numpy(img).permute(2, 0, 1)[None].float() - mean) / std
    bn = nn.BatchNorm2d(4).eval()
    bn.load_state_dict({k[len("bn1."):]: v for k, v in src.items() if k.startswith("bn1.")})
    with torch.no_grad():
        theirs = bn(F.conv2d(theirs_in, src["conv1.weight"], stride=2, padding=1))
        ours = model.stem.bn1.eval()(model.stem.conv1(ours_in))
    inner = (..., slice(1, -1), slice(1, -1))
    torch.testing.assert_close(ours[inner], theirs[inner], rtol=1e-4, atol=1e-3)
    assert not torch.allclose(ours[..., 0, :], theirs[..., 0, :], rtol=1e-4, atol=1e-3)


def test_backbone_of_the_wrong_depth_or_layout_is_refused(tmp_path):
    model = PSPNet(slim_config(stride_on_reduce=False))
    src = _initmodel_layout(model)
    src["layer3.6.conv1.weight"] = torch.zeros(16, 64, 1, 1)          # a 7th stage-4 block
    torch.save(src, tmp_path / "deep.pth")
    with pytest.raises(InitError, match="layer3.6"):
        load_backbone(model, tmp_path / "deep.pth")
    src = _initmodel_layout(model)
    del src["layer2.0.conv2.weight"]
    torch.save(src, tmp_path / "short.pth")
    with pytest.raises(InitError, match="lacks"):
        load_backbone(model, tmp_path / "short.pth")


def test_model_from_arch_paper_options():
    # no model is allocated at full size here: configs only, and one slim build per option
    from pspnet_caffe.train.init import arch_config
    c = arch_config("pspnet269", 21, 473, aux=True)
    assert c.blocks == BLOCKS[269] and c.depth == 269 and c.ppm_width == 512 and c.aux
    assert arch_config("pspnet152", 21, 473, aux=True).depth == 152
    assert arch_config("pspnet50", 150, 473, aux=True, options={"bins": (1,)}).ppm_width == 2048
    assert arch_config("pspnet50", 150, 473, aux=False).aux_width == 0
    with pytest.raises(InitError, match="pspnet18"):
        arch_config("pspnet18", 2, 473, aux=True)
    with pytest.raises(InitError, match="bins"):
        arch_config("pspnet50", 2, 473, aux=True, options={"bins": (1, 99)})


# --- model variants of the paper's experiments -----------------------------------------------

VARIANTS = {
    "baseline_no_pyramid": dict(bins=()),
    "bin1_max": dict(bins=(1,), pool="max"),
    "bins1236_max_no_dr": dict(pool="max", reduction=False),
    "no_aux": dict(aux_width=0),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_trains_saves_loads_and_exports(name, tmp_path):
    from pspnet_caffe.converter.convert import convert
    from pspnet_caffe.converter.export import export
    model = slim_model(seed=12, **VARIANTS[name])
    c = model.config
    x = torch.randn(1, 3, 65, 65)
    out = model(x)
    assert set(out) == ({"out", "aux"} if c.aux else {"out"})
    assert out["out"].shape == (1, 150, 65, 65)
    if not c.reduction:
        assert not any("ppm.stages.0.conv" in k for k in model.state_dict())
        assert model.head.conv.in_channels == 128 * (1 + len(c.bins))
    path = save_pspnet(model, tmp_path / f"{name}.pth", {"name": name})
    loaded = psp_torch.load(path)
    assert loaded.config == c
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    proto, weights = export(path, tmp_path / "caffe", log=lambda *a: None)
    text = proto.read_text()
    assert ("conv5_3_concat" in text) == bool(c.bins)
    # pool1_3x3_s2 is MAX in every PSPNet; the pyramid levels add theirs
    assert text.count("pool: MAX") == 1 + (len(c.bins) if c.pool == "max" else 0)
    assert ("conv5_3_pool1_conv" in text) == (c.reduction and 1 in c.bins)
    back = psp_torch.load(convert(weights, prototxt=proto, out=tmp_path / "back.pth",
                                  log=lambda *a: None))
    # without pyramid convs (no DR, or no pyramid) ppm_width has no meaning (no layer has it)
    has_ppm_convs = c.reduction and bool(c.bins)
    assert back.config == (c if has_ppm_convs else replace(c, ppm_width=back.config.ppm_width))
    with torch.no_grad():
        assert torch.equal(back(x), model(x))


@pytest.mark.parametrize("depth", [152, 269])
def test_deeper_resnets_build_with_the_table3_block_counts(depth, tmp_path):
    with torch.device("meta"):
        full = PSPNet(PSPNetConfig(num_classes=150, blocks=BLOCKS[depth], aux_width=256))
    assert full.config.depth == depth
    assert [len(getattr(full, f"layer{s}")) for s in (1, 2, 3, 4)] == list(BLOCKS[depth])
    if depth == 152:                                  # one slim build: forward, save, load
        model = slim_model(seed=13, blocks=BLOCKS[152], crop_size=49)
        assert model(torch.randn(2, 3, 49, 49))["aux"].shape == (2, 150, 49, 49)
        loaded = psp_torch.load(save_pspnet(model, tmp_path / "m.pth", {"name": "slim152"}))
        assert loaded.config == model.config


def test_released_configs_are_unchanged_by_the_new_fields():
    for name in ("pspnet50_ade20k", "pspnet101_voc2012", "pspnet101_cityscapes"):
        c = preset_config(name)
        assert (c.bins, c.pool, c.reduction, c.dropout) == ((1, 2, 3, 6), "ave", True, 0.1)
        old = {k: v for k, v in c.to_dict().items() if k not in ("pool", "reduction")}
        assert PSPNetConfig.from_dict(old) == c          # files written before still load


def test_recipes_are_the_papers():
    bench = {d: datasets.get(d) for d in datasets.names()}
    recipes = {d: facts.train for d, facts in bench.items()}
    assert {d: r.iterations for d, r in recipes.items()} == {
        "ade20k": 150_000, "voc": 30_000, "cityscapes": 90_000}
    assert {d: (r.rotate, r.blur) for d, r in recipes.items()} == {
        "ade20k": (True, True), "voc": (True, True), "cityscapes": (False, False)}
    assert {d: facts.crop_size for d, facts in bench.items()} == {
        "ade20k": 473, "voc": 473, "cityscapes": 713}
