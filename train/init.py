"""Where a training run starts: a model file (fine-tuning), or an architecture (+ backbone).

* `model_from_file`: a project model file (`psp_torch.io`, e.g. a converted release): every
  weight is taken, aux head included. With another class count, conv6 and conv6_1 (the two
  classifiers) are re-initialised and the report says so.
* `model_from_arch`: pspnet50/101/152/269 (deep-stem dilated ResNets, paper Table 3) with the
  paper's experiment options, randomly initialised as the release's fillers say (msra convs,
  BN slope 1 / bias 0), optionally with an ImageNet backbone in the layout of the authors'
  PyTorch initmodel files (semseg's ``initmodel/resnet{50,101,152}_v2.pth``): keys
  ``conv1|bn1|conv2|bn2|conv3|bn3.*`` (the deep stem), ``layer{1..4}.{i}.conv{1,2,3}|bn{1,2,3}
  |downsample.{0,1}.*`` (stride on the 3x3 conv), ``fc.*`` (dropped).

Those backbones were trained on RGB / 255-scaled input normalised by mean and std
(semseg: mean 0.485/0.456/0.406, std 0.229/0.224/0.225, times 255). The network here is
fed BGR minus the release's mean, no std (`psp_torch.preprocess`), so conv1's weights are
reordered to BGR and divided by the std, and the small mean difference (at most 0.5 grey
levels) is folded into bn1's running mean: the mapped stem computes the original's
function (exactly away from the zero-padded border).
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from psp_torch.config import PSPNetConfig
from psp_torch.io import ModelFileError, read
from psp_torch.metadata import generic_meta
from psp_torch.presets import BLOCKS, MEAN_RGB
from psp_torch.pspnet import AuxHead, PSPNet

ARCHS = {f"pspnet{d}": d for d in BLOCKS}
AUX_WIDTH = 256                       # conv4_24 of the release (a quarter of its input, 1024)
# the classifiers a change of classes re-initialises: module -> its Caffe name
CLASSIFIERS = {"classifier": PSPNet.CLASSIFIER, "aux.classifier": AuxHead.CLASSIFIER}
# The ImageNet normalisation of semseg's initmodel backbones (RGB, 0..255 scale).
BACKBONE_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
BACKBONE_STD_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)


class InitError(ValueError):
    """A start file or option that cannot make the requested model (message names it)."""


# --- fillers ---------------------------------------------------------------------------------

@torch.no_grad()
def caffe_init(module: nn.Module) -> None:
    """The release prototxts' fillers: msra (N(0, 2 / fan_in)) conv weights, bias 0; BN 1, 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            m.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()


# --- from a model file -----------------------------------------------------------------------

def _read_pspnet(path, limits=None) -> dict:
    try:
        payload = read(path, limits=limits)
    except FileNotFoundError:
        raise InitError(f"{path}: no such file") from None
    except ModelFileError as exc:
        raise InitError(str(exc)) from None
    if payload.get("kind") != "pspnet":
        raise InitError(f"{path}: a {payload.get('kind')!r} model file, not a PSPNet: "
                        f"training needs a PSPNet (convert a PSPNet caffemodel)")
    return payload


def model_from_file(path, num_classes: int | None = None, *, aux: bool | None = None,
                    options: dict | None = None, limits=None) -> tuple[PSPNet, list[str]]:
    """(model in train mode, report lines) from a project .pth.

    `num_classes` other than the file's: conv6 and conv6_1 are re-initialised. `aux`
    True adds a fresh aux head when the file has none, False drops it; None keeps the file's.
    `options`: network options (`psp_torch.config.options`) that override the file's (those
    that change no weight's shape, e.g. dropout).
    """
    payload = _read_pspnet(path, limits)          # every size checked (psp_torch.limits)
    config = PSPNetConfig.from_dict(payload["config"])
    state = dict(payload["state_dict"])
    meta = dict(payload.get("meta") or {})
    report = [f"init: {path}: {config.depth}-layer PSPNet, {config.num_classes} classes, "
              f"crop {config.crop_size}, aux head {'yes' if config.aux else 'no'}"]
    changes = {k: v for k, v in (options or {}).items() if getattr(config, k) != v}
    if aux is True and not config.aux:
        changes["aux_width"] = AUX_WIDTH * config.aux_input_width // 1024 or 1
        report.append(f"aux head ({AuxHead.NAME}, {AuxHead.CLASSIFIER}) not in the file: "
                      f"initialised at random (width {changes['aux_width']})")
    elif aux is False and config.aux:
        changes["aux_width"] = 0
        state = {k: v for k, v in state.items() if not k.startswith("aux.")}
        report.append("aux head dropped")
    if num_classes is not None and num_classes != config.num_classes:
        if num_classes < 1:
            raise InitError(f"--num-classes must be >= 1, not {num_classes}")
        changes["num_classes"] = num_classes
    if changes:
        try:
            config = replace(config, **changes)
        except ValueError as exc:
            raise InitError(f"{path}: {exc}") from None
    model = PSPNet(config, meta)
    caffe_init(model)
    if "num_classes" in changes:
        reset = [m for m in CLASSIFIERS if m != "aux.classifier" or config.aux]
        state = {k: v for k, v in state.items() if k.rsplit(".", 1)[0] not in reset}
        for m in reset:
            report.append(f"{CLASSIFIERS[m]} ({m}) re-initialised: "
                          f"{payload['config']['num_classes']} -> {num_classes} classes")
        meta.update(num_classes=num_classes, class_names=None, palette=None, dataset=None)
        model.meta = meta
    missing, unexpected = model.load_state_dict(state, strict=False)
    expected_missing = {k for k in model.state_dict()
                        if k.rsplit(".", 1)[0] in CLASSIFIERS and "num_classes" in changes
                        or (k.startswith("aux.") and "aux_width" in changes)}
    if set(missing) - expected_missing or unexpected:
        raise InitError(f"{path}: state_dict does not fit its config (missing "
                        f"{sorted(set(missing) - expected_missing)[:3]}, unexpected "
                        f"{sorted(unexpected)[:3]})")
    report.append(f"weights taken: {len(state)} tensors")
    return model.train(), report


# --- from an architecture --------------------------------------------------------------------

def arch_config(arch: str, num_classes: int, crop_size: int, *, aux: bool,
                options: dict | None = None) -> PSPNetConfig:
    """The config of `arch` with the network options given (`psp_torch.config.options`; the
    release's otherwise) and the paper's pyramid width: 2048 / len(bins) with DR."""
    if arch not in ARCHS:
        raise InitError(f"unknown --arch {arch!r}; one of {', '.join(ARCHS)}")
    try:
        config = PSPNetConfig(num_classes=num_classes, blocks=BLOCKS[ARCHS[arch]],
                              crop_size=crop_size, aux_width=AUX_WIDTH if aux else 0,
                              **(options or {}))
    except ValueError as exc:
        raise InitError(str(exc)) from None
    if not config.bins:
        return config
    return replace(config, ppm_width=config.out_widths[3] // len(config.bins))


def model_from_arch(arch: str, num_classes: int, crop_size: int, *, aux: bool,
                    options: dict | None = None, backbone=None) -> tuple[PSPNet, list[str]]:
    """(model in train mode, report) of `arch`; `backbone` an initmodel-layout .pth or None."""
    config = arch_config(arch, num_classes, crop_size, aux=aux, options=options)
    model = PSPNet(config, generic_meta(arch, num_classes, crop_size))
    caffe_init(model)
    report = [f"{arch}: {config.depth}-layer dilated ResNet, bins {list(config.bins) or 'none'}"
              f", {config.pool} pooling, {'with' if config.reduction else 'without'} dimension "
              f"reduction, aux head {'yes' if config.aux else 'no'}; random init (msra)"]
    if backbone is not None:
        report += load_backbone(model, backbone)
    return model.train(), report


# --- the authors' initmodel backbones -------------------------------------------------------

_STEM = {"conv1": "stem.conv1", "bn1": "stem.bn1", "conv2": "stem.conv2", "bn2": "stem.bn2",
         "conv3": "stem.conv3", "bn3": "stem.bn3"}


def backbone_key(key: str) -> str | None:
    """Our state_dict key for an initmodel key (None: not part of the PSPNet, e.g. fc)."""
    head, _, rest = key.partition(".")
    if head in _STEM:
        return f"{_STEM[head]}.{rest}"
    if head in ("layer1", "layer2", "layer3", "layer4"):
        return key
    return None


def _backbone_state(path) -> dict:
    try:
        obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InitError(f"{path}: no such file") from None
    except Exception as exc:
        raise InitError(f"{path}: not a weights-only state_dict ({str(exc).splitlines()[0]})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InitError(f"{path}: expected a state_dict of tensors (resnet*_v2.pth layout)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


@torch.no_grad()
def load_backbone(model: PSPNet, path) -> list[str]:
    """Copy an initmodel-layout ImageNet ResNet into `model`'s stem and stages; report lines."""
    src = _backbone_state(path)
    ours = model.state_dict()
    mapped, dropped = {}, []
    for key, value in src.items():
        target = backbone_key(key)
        if target is None:
            dropped.append(key)
            continue
        if target not in ours:
            raise InitError(f"{path}: {key} has no place in {model.meta.get('name', 'the model')}"
                            f" ({target}); wrong depth?")
        if tuple(value.shape) != tuple(ours[target].shape):
            raise InitError(f"{path}: {key} has shape {tuple(value.shape)}, {target} needs "
                            f"{tuple(ours[target].shape)}")
        mapped[target] = value.to(ours[target].dtype)
    needed = [k for k in ours if k.startswith(("stem.", "layer")) and
              not k.endswith("num_batches_tracked")]
    missing = [k for k in needed if k not in mapped]
    if missing:
        raise InitError(f"{path}: backbone lacks {len(missing)} tensors, e.g. {missing[:3]}")
    _adapt_input_space(mapped)
    model.load_state_dict(mapped, strict=False)
    return [f"backbone: {path}: {len(mapped)} tensors mapped"
            + (f", {len(dropped)} dropped ({', '.join(sorted(dropped)[:4])})" if dropped else ""),
            "backbone: conv1 re-expressed for BGR input minus the release mean, no std"]


def _adapt_input_space(state: dict) -> None:
    """conv1 of an RGB, mean/std-normalised backbone -> BGR minus MEAN_RGB (see module doc)."""
    w = state["stem.conv1.weight"].clone()                       # (64, 3 RGB, 3, 3)
    std = torch.tensor(BACKBONE_STD_RGB, dtype=w.dtype).view(1, 3, 1, 1)
    w_rgb = w / std
    offset = torch.tensor([m - b for m, b in zip(MEAN_RGB, BACKBONE_MEAN_RGB)], dtype=w.dtype)
    # our input x' = x - MEAN_RGB; theirs needs x - BACKBONE_MEAN = x' + offset (per channel)
    delta = (w_rgb.sum(dim=(2, 3)) * offset).sum(dim=1)          # conv of the constant offset
    state["stem.conv1.weight"] = w_rgb.flip(1).contiguous()      # RGB -> BGR input channels
    state["stem.bn1.running_mean"] = state["stem.bn1.running_mean"] - delta
