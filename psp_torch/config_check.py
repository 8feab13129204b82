"""A `PSPNetConfig` and its state_dict read from a file, checked before anything is built.

    config = check_config(payload["config"], path, limits)      # ModelFileError if not
    check_state_dict(payload["state_dict"], config, path)

A model file is a stranger's: its config may hold a string where an integer belongs, a
list of the wrong length, or sizes that would allocate gigabytes (``blocks [3, 4, 1e7, 3]``,
``crop_size 16001``). `check_config` checks every field's type against `PSPNetConfig`'s own
field types (derived from its defaults, so a new field is checked without an edit here) and
every size against `psp_torch.limits.Limits`, then the parameter count of the network it
describes (counted on the meta device: nothing allocated). `check_state_dict` compares the
file's tensors, key by key and shape by shape, with the ones that network has, so building
it costs no more than the file already holds.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import torch

from caffe_proto.printable import printable

from .config import PSPNetConfig
from .limits import DEFAULT, Limits, refuse, within
from .pspnet import PSPNet

FIELDS = {f.name: f for f in dataclasses.fields(PSPNetConfig)}

# which limit each size field is measured against (every other field is a flag or a number)
SIZE_LIMITS = {"blocks": "blocks", "stem_widths": "width", "mid_widths": "width",
               "out_widths": "width", "ppm_width": "width", "head_width": "width",
               "aux_width": "width", "num_classes": "classes", "crop_size": "crop",
               "dilations": "dilation", "bins": "crop"}
# the smallest value of each size field (aux_width 0 = no aux head)
SMALLEST = {"aux_width": 0}
# the range of each number field
RANGES = {"bn_eps": (lambda v: v > 0, "> 0"), "dropout": (lambda v: 0 <= v < 1, "in [0, 1)")}


class ConfigError(ValueError):
    """A config or state_dict from a file that cannot be a PSPNet's (message names the file)."""


def _kind(name: str):
    """The Python type of a config field, from its default (num_classes: int)."""
    default = FIELDS[name].default
    return int if default is dataclasses.MISSING else type(default)


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fixed_length(name: str) -> int | None:
    """How many entries a tuple field has (bins: any number)."""
    return None if name == "bins" else len(FIELDS[name].default)


def _checked_field(name: str, value, source, limits: Limits):
    kind = _kind(name)
    say = f"{source}: config: field {name}"
    if kind is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{say} is {_what(value)}, not a list of integers")
        n = _fixed_length(name)
        if n is not None and len(value) != n:
            raise ConfigError(f"{say} has {len(value)} entries, not {n}")
        if name == "bins":
            within(source, "config: field bins: number of levels", len(value), "bins", limits)
        for i, v in enumerate(value):
            if not _int(v):
                raise ConfigError(f"{say}[{i}] is {_what(v)}, not an integer")
            _size(f"{name}[{i}]", v, name, source, limits)
        return tuple(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{say} is {_what(value)}, not true/false")
        return value
    if kind is int:
        if not _int(value):
            raise ConfigError(f"{say} is {_what(value)}, not an integer")
        _size(name, value, name, source, limits)
        return value
    if kind is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not math.isfinite(value):
            raise ConfigError(f"{say} is {_what(value)}, not a finite number")
        ok, text = RANGES.get(name, (lambda v: True, ""))
        if not ok(value):
            raise ConfigError(f"{say} is {value}, not {text}")
        return float(value)
    if not isinstance(value, kind):
        raise ConfigError(f"{say} is {_what(value)}, not a {kind.__name__}")
    return value


def _size(field: str, value: int, name: str, source, limits: Limits) -> None:
    smallest = SMALLEST.get(name, 1)
    if value < smallest:
        raise ConfigError(f"{source}: config: field {field} is {value}, below {smallest}")
    if name in SIZE_LIMITS:
        within(source, f"config: field {field}", value, SIZE_LIMITS[name], limits)


def _what(value) -> str:
    """A short description of a value of the wrong type, safe to print."""
    shown = printable(repr(value), 40)
    return f"{type(value).__name__} {shown}"


def parameter_count(config: PSPNetConfig) -> int:
    """Parameters and buffers of the PSPNet a config describes, counted on the meta device."""
    return sum(math.prod(shape) for shape in expected_shapes(config).values())


@functools.lru_cache(maxsize=4)
def expected_shapes(config: PSPNetConfig) -> dict:
    """{state_dict key: shape} of the PSPNet a config describes (meta device: no memory;
    the last few kept, as a file's config is checked and then its state_dict)."""
    with torch.device("meta"):
        model = PSPNet(config)
    return {k: tuple(t.shape) for k, t in model.state_dict().items()}


def check_config(d, source, limits: Limits | None = None) -> PSPNetConfig:
    """The PSPNetConfig of a config dict read from `source`, every field's type and size
    checked (ConfigError / `psp_torch.limits.ModelLimitError`, one line naming the file, the
    field and the value) before anything is built."""
    limits = limits or DEFAULT
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: config: {_what(d)}, not a dict of fields")
    unknown = [k for k in d if k not in FIELDS]
    if unknown:
        raise ConfigError(f"{source}: config: unknown field {printable(repr(unknown[0]), 60)}")
    missing = [n for n, f in FIELDS.items() if f.default is dataclasses.MISSING and n not in d]
    if missing:
        raise ConfigError(f"{source}: config: no field {missing[0]}")
    fields = {name: _checked_field(name, value, source, limits) for name, value in d.items()}
    try:
        config = PSPNetConfig(**fields)
    except ValueError as exc:
        raise ConfigError(f"{source}: config: {exc}") from None
    n = parameter_count(config)
    if n > limits.parameters:
        raise refuse(source, "config: the network's parameter count", f"{n:,}", "parameters",
                     limits)
    return config


def check_state_dict(state, config: PSPNetConfig, source) -> dict:
    """`state` when it holds exactly the tensors (keys, shapes, floating point) of the PSPNet
    `config` describes; ConfigError naming the first key that does not fit otherwise."""
    if not isinstance(state, dict):
        raise ConfigError(f"{source}: state_dict is {_what(state)}, not a dict of tensors")
    expected = expected_shapes(config)
    for key, value in state.items():
        name = printable(key, 80) if isinstance(key, str) else _what(key)
        if key not in expected:
            raise ConfigError(f"{source}: state_dict key {name} is not in the network its "
                              f"config describes")
        if not isinstance(value, torch.Tensor):
            raise ConfigError(f"{source}: state_dict[{name}] is {_what(value)}, not a tensor")
        if tuple(value.shape) != expected[key]:
            raise ConfigError(f"{source}: state_dict[{name}] has shape {list(value.shape)}, "
                              f"the config's network needs {list(expected[key])}")
        if key.endswith("num_batches_tracked"):
            continue
        if not value.is_floating_point():
            raise ConfigError(f"{source}: state_dict[{name}] is {value.dtype}, not floating "
                              f"point")
    missing = [k for k in expected if k not in state]
    if missing:
        raise ConfigError(f"{source}: state_dict has no {missing[0]} (and {len(missing) - 1} "
                          f"more keys missing)" if len(missing) > 1 else
                          f"{source}: state_dict has no {missing[0]}")
    return state
