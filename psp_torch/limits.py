"""How large a network a model file may declare: the one place these limits live.

A model file (.pth, .safetensors, ONNX, a training checkpoint) states the sizes of the
network it holds (blocks, widths, classes, crop, bins, dilations) and the meta its users
read (crop and base size). Every one of them is checked against `Limits` before anything
is built or allocated, and a size above its limit is refused in one line naming the file,
the field and the value (`ModelLimitError`).

The defaults derive from the largest configuration this project knows (the released models
in `psp_torch.presets`, the deepest ResNet of the paper, the full widths of `PSPNetConfig`)
times a generous factor, so every genuine model is far below them; a user with a genuinely
larger one raises a limit: ``psp_torch.load(path, limits=Limits(crop=4097))``, or on every
command line that reads a model file ``--model-limit crop=4097`` (repeatable).
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from caffe_proto import limits as caffe_limits

from .config import PSPNetConfig        # its defaults are the release's full widths
from .presets import BLOCKS, PRESETS

FACTOR = 4          # how far above the largest known value a genuine model may go


def _largest_width() -> int:
    ref = PSPNetConfig(num_classes=1)
    return max(*ref.stem_widths, *ref.mid_widths, *ref.out_widths, ref.ppm_width,
               ref.head_width)


def _largest(values) -> int:
    return max(int(v) for v in values)


@dataclass(frozen=True)
class Limits:
    """The largest value a model file may declare for each kind of size (see module doc)."""
    blocks: int = FACTOR * _largest(b for blocks in BLOCKS.values() for b in blocks)
    width: int = FACTOR * _largest_width()
    classes: int = 64 * _largest(p.num_classes for p in PRESETS.values())
    crop: int = FACTOR * _largest(p.crop_size for p in PRESETS.values())
    base_size: int = FACTOR * _largest(p.base_size for p in PRESETS.values())
    bins: int = FACTOR * len(PSPNetConfig(num_classes=1).bins)     # the release's pyramid
    dilation: int = 64
    parameters: int = caffe_limits.DEFAULT.values   # the Caffe files' budget: 16 x the largest release

    @classmethod
    def field_help(cls) -> str:
        return ", ".join(f"{f.name} {f.default:,}" for f in dataclasses.fields(cls))

    def raised(self, **changes) -> "Limits":
        """These limits with some changed (only upwards: a limit protects the machine)."""
        return dataclasses.replace(self, **{k: max(v, getattr(self, k))
                                            for k, v in changes.items()})


DEFAULT = Limits()


class ModelLimitError(ValueError):
    """A size in a model file above its limit (message: file, field, value, the option)."""


def refuse(source, field: str, value, limit_name: str, limits: Limits) -> ModelLimitError:
    """The one-line refusal of `field` = `value` above the limit `limit_name`."""
    return ModelLimitError(
        f"{source}: {field} {value} is above the limit {getattr(limits, limit_name):,} for "
        f"{limit_name} (far beyond any released PSPNet; --model-limit {limit_name}=N raises it)")


def within(source, field: str, value: int, limit_name: str, limits: Limits) -> int:
    """`value` when it is at most its limit, else `ModelLimitError`."""
    if value > getattr(limits, limit_name):
        raise refuse(source, field, value, limit_name, limits)
    return value


# --- the command-line option ---------------------------------------------------------------

OPTION = "--model-limit"


def _parse(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    names = [f.name for f in dataclasses.fields(Limits)]
    if not sep or name not in names:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=N with NAME one of "
                                         f"{', '.join(names)}")
    try:
        n = int(value.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a limit is a positive integer")
    return name, n


def add_option(parser) -> None:
    """``--model-limit NAME=N`` (repeatable) on a command line that reads model files."""
    parser.add_argument(OPTION, dest="model_limits", type=_parse, action="append", default=None,
                        metavar="NAME=N",
                        help=f"raise a limit on the sizes a model file may declare (defaults: "
                             f"{Limits.field_help()})")


def from_args(args) -> Limits:
    """The limits a parsed command line asks for (`add_option`)."""
    return DEFAULT.raised(**dict(getattr(args, "model_limits", None) or []))
