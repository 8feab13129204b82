"""The `.meta` dict a model carries: what a user needs to feed it and read its output.

Keys: name, dataset, num_classes, class_names, palette (list of [r, g, b]),
crop_size, base_size, mean_rgb, channel_order ("BGR": the network's input order).
Only plain Python values, so the dict survives ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from caffe_proto.printable import printable

from . import datasets
from .config import is_standard_width, match_preset
from .digest import file_sha256
from .limits import DEFAULT, within
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


# --- a meta dict read from a file ---------------------------------------------------------------

class MetaError(ValueError):
    """A meta dict from a file with a value of the wrong type or size (message names the file)."""


def _text(v) -> bool:
    return isinstance(v, str)


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _colour(v) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == 3
            and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in v))


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# what each key that code reads must hold (None is allowed for every one: a generic model's
# meta leaves gaps), and which limit of `psp_torch.limits.Limits` bounds it
META_TYPES = {
    "name": (_text, "a string", None),
    "dataset": (_text, "a string", None),
    "channel_order": (lambda v: v in ("BGR", "RGB"), "'BGR' or 'RGB'", None),
    "num_classes": (_count, "a positive integer", "classes"),
    "crop_size": (_count, "a positive integer", "crop"),
    "base_size": (_count, "a positive integer", "base_size"),
    "mean_rgb": (lambda v: isinstance(v, (list, tuple)) and len(v) == 3
                 and all(_number(c) for c in v), "three numbers", None),
    "class_names": (lambda v: isinstance(v, (list, tuple)) and all(_text(n) for n in v),
                    "a list of strings", "classes"),
    "palette": (lambda v: isinstance(v, (list, tuple)) and all(_colour(c) for c in v),
                "a list of [r, g, b] (0..255)", "classes"),
}


def check_meta(meta, source, limits=None) -> dict:
    """`meta` (None: {}) as a dict when every key the code reads holds a value of its type and
    size (`META_TYPES`); MetaError / `psp_torch.limits.ModelLimitError` naming the file, the
    key and the value otherwise. Other keys are kept as they are (plain data)."""
    limits = limits or DEFAULT
    if meta is None:
        return {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) for k in meta):
        raise MetaError(f"{source}: meta is {type(meta).__name__} "
                        f"{printable(repr(meta), 40)}, not an object of named values")
    for key, (ok, what, limit) in META_TYPES.items():
        value = meta.get(key)
        if value is None:
            continue
        if limit is not None:
            size = len(value) if isinstance(value, (list, tuple)) else value
            if isinstance(size, int) and not isinstance(size, bool):
                within(source, f"meta {key}" + (" (entries)" if size is not value else ""),
                       size, limit, limits)
        if not ok(value):
            raise MetaError(f"{source}: meta {key} is {type(value).__name__} "
                            f"{printable(repr(value), 40)}, not {what}")
    return dict(meta)
