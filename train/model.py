"""The model a `TrainConfig` describes: built from a model file or an architecture, and the
meta its model files carry (classes, palette, crop, base size, mean)."""
from __future__ import annotations

import dataclasses

from psp_torch.datasets import listfile
from psp_torch.presets import MEAN_RGB
from psp_torch.pspnet import PSPNet
from . import data as D
from . import init as I
from .config import TrainConfig

def _reconfigured(model: PSPNet, **changes) -> PSPNet:
    """The same model with config fields changed (same weights: crop/dropout change no shape)."""
    cfg = model.config
    changes = {k: v for k, v in changes.items()
               if hasattr(cfg, k) and v is not None and getattr(cfg, k) != v}
    if not changes:
        return model
    new = PSPNet(dataclasses.replace(cfg, **changes), dict(model.meta))
    new.load_state_dict(model.state_dict())
    return new


def build(config: TrainConfig, log) -> PSPNet:
    """The initial model (weights drawn from torch's RNG as seeded by the caller); `log` gets
    the report lines (what was taken, what re-initialised)."""
    if config.init is not None:
        if not config.init.is_file():
            raise FileNotFoundError(2, "No such file or directory", str(config.init))
        # a file without the aux head gets a fresh one when the aux loss is on (paper, sec. 4)
        model, report = I.model_from_file(config.init, num_classes=config.num_classes,
                                          limits=config.model_limits,
                                          aux=True if config.aux_weight > 0 else None,
                                          options=config.network)
        model = _reconfigured(model, crop_size=config.crop_size)   # None: the model's own
    else:
        model, report = I.model_from_arch(
            config.arch, config.num_classes, config.crop_size, aux=config.aux_weight > 0,
            options=config.network,
            backbone=None if config.init_backbone is None else str(config.init_backbone))
    for line in report:
        log(line)
    return model


def meta(config: TrainConfig, model: PSPNet) -> dict:
    """The model's meta for its files: a benchmark's classes and palette when the class count
    is the benchmark's, else one's own (--class-names, or 'class k')."""
    m = dict(model.meta)
    c = D.class_facts(config.dataset, config.num_classes, config.class_names)
    dataset = c["dataset"]
    m.update(name=f"pspnet{model.config.depth}_{dataset or listfile.DATASET.name}", dataset=dataset,
             num_classes=config.num_classes, class_names=c["class_names"],
             palette=c["palette"], crop_size=model.config.crop_size,
             base_size=c["base_size"] if dataset else (m.get("base_size") or c["base_size"]),
             mean_rgb=list(MEAN_RGB), channel_order="BGR")
    return m

