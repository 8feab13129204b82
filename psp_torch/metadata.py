"""The `.meta` dict a model carries: what a user needs to feed it and read its output.

Keys: name, dataset, num_classes, class_names, palette (list of [r, g, b]),
crop_size, base_size, mean_rgb, channel_order ("BGR": the network's input order).
Only plain Python values, so the dict survives ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import datasets
from .config import is_standard_width, match_preset
from .digest import file_sha256
from .presets import CHANNEL_ORDER, MEAN_RGB, PRESETS


def _classes(dataset: str, num_classes: int):
    """(class names, palette) of a dataset (`psp_torch.datasets`), None where unknown."""
    facts = datasets.registry().get(dataset)
    if facts is None or facts.num_classes != num_classes:
        return None, None
    return list(facts.classes), facts.palette.tolist()


def preset_meta(name: str) -> dict:
    """Metadata of a released configuration (`psp_torch.presets.PRESETS[name]`)."""
    p = PRESETS[name]
    names, palette = _classes(p.dataset, p.num_classes)
    return {
        "name": p.name,
        "dataset": p.dataset,
        "num_classes": p.num_classes,
        "class_names": names,
        "palette": palette,
        "crop_size": p.crop_size,
        "base_size": p.base_size,
        "mean_rgb": list(MEAN_RGB),
        "channel_order": CHANNEL_ORDER,
    }


def generic_meta(name: str, num_classes: int | None = None, crop_size: int | None = None) -> dict:
    """Metadata of a model that matches no released configuration."""
    return {
        "name": name,
        "dataset": None,
        "num_classes": num_classes,
        "class_names": None,
        "palette": None,
        "crop_size": crop_size,
        "base_size": None,
        "mean_rgb": list(MEAN_RGB),
        "channel_order": CHANNEL_ORDER,
    }


def config_meta(config) -> dict:
    """Metadata of a PSPNet configuration: its released preset's (``<name>_custom_width`` when
    only the widths differ), else generic."""
    preset = match_preset(config)
    if preset is not None:
        meta = preset_meta(preset.name)
        if not is_standard_width(config):
            meta["name"] = f"{preset.name}_custom_width"
        return meta
    return generic_meta(f"pspnet{config.depth}_{config.num_classes}classes",
                        config.num_classes, config.crop_size)


def source_meta(weights) -> dict:
    """source (file name) and source_sha256 of a weights file given by path; {} otherwise."""
    if not isinstance(weights, (str, os.PathLike)):
        return {}
    return {"source": Path(weights).name, "source_sha256": file_sha256(weights)}
