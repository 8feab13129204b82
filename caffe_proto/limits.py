"""The budgets every size read from a Caffe file is checked against, before memory is asked for.

A stranger's file declares sizes: a convolution's ``num_output``, kernel and channels, a blob's
shape, an HDF5 dataset's shape, the input dims of a prototxt, how many layers there are. A
208-byte prototxt can declare a 10 GB weight; a 3 KB compressed HDF5 file a 15 GB dataset. Each
such size is compared with a budget that a genuine input is far below, and a file above it is
refused with one message naming the file, the layer or field and the number.

The budgets, and why they are where they are:

- `LARGEST_RELEASED` = 68,185,066: the float32 values of the largest released PSPNet
  (``pspnet101_VOC2012``, auxiliary branch included; README "Convert a released model").
- values: ``FACTOR`` (16) times that = 1,090,961,056 float32 values (4.4 GB). It bounds one
  blob, one weights file's total, one net's parameters and one activation blob of a net
  built at its declared input size. 16 leaves room for the biggest Caffe nets people still
  convert (VGG-16: 138 M parameters, 2x; a PSPNet's largest activation at 713: 33 M values)
  and for their widened variants, while a file asking for more than 4.4 GB is refused
  before anything is allocated.
- layers: 20,000. The released nets have under 400 (Caffe's deepest ResNet-269 about 2,500).
  Two counts follow from it, so raising it raises them: blobs (5/2 per layer on average;
  BN layers have 4, most have 0) and protobuf fields walked per file (25/2 per layer; a
  genuine layer definition has about 6).
- a layer's definition without its blobs: 1 MiB (a few hundred bytes in practice).
- an HDF5 dataset: its declared bytes at most 1100 times the bytes the file stores for it
  (deflate's limit is 1032:1; Caffe writes datasets uncompressed).

`Limits` holds the two a genuine user could need to raise; the CLIs that read Caffe files
(``convert.py``, ``caffe-inspect``) take ``--max-values`` and ``--max-layers`` for them.
No torch here: the readers and `psp_torch.caffe.graph.CaffeNet` share this module.
"""
from __future__ import annotations

from dataclasses import dataclass

LARGEST_RELEASED = 68_185_066   # float32 values of pspnet101_VOC2012.caffemodel
FACTOR = 16
MAX_DEFINITION_BYTES = 1 << 20  # one layer's definition without its blobs
# An HDF5 dataset's declared bytes per stored byte: deflate cannot pass 1032:1; Caffe itself
# writes uncompressed datasets (1:1). A dataset declaring more was never written.
MAX_COMPRESSION_RATIO = 1100
RAISE_HINT = {"values": "--max-values", "layers": "--max-layers"}


@dataclass(frozen=True)
class Limits:
    """The budgets of one read (see the module docstring for their values' reasons)."""

    values: int = LARGEST_RELEASED * FACTOR    # float values: one blob, one file, one net
    layers: int = 20_000

    @property
    def blobs(self) -> int:
        return self.layers * 5 // 2

    @property
    def fields(self) -> int:
        return self.layers * 25 // 2

    def values_problem(self, count: int, what: str) -> str | None:
        """A message when `count` values (what `what` asks for) exceed the budget, else None."""
        if count <= self.values:
            return None
        return (f"{what} {count:,} values, more than the limit of {self.values:,} "
                f"({RAISE_HINT['values']} raises it)")

    def layers_problem(self, count: int) -> str | None:
        if count <= self.layers:
            return None
        return (f"more than {self.layers:,} layers: not a plausible net "
                f"({RAISE_HINT['layers']} raises the limit)")


DEFAULT = Limits()


def add_options(parser) -> None:
    """``--max-values`` and ``--max-layers`` on a CLI that reads Caffe files."""
    from .cli import positive_int

    parser.add_argument(RAISE_HINT["values"], type=positive_int, default=DEFAULT.values,
                        metavar="N", help="refuse a file declaring more float values than this "
                        "in one blob, in all its weights, in a net's parameters or in one "
                        "blob of the net at its input size (16x the largest released PSPNet)")
    parser.add_argument(RAISE_HINT["layers"], type=positive_int, default=DEFAULT.layers,
                        metavar="N", help="refuse a file with more layers than this")


def from_args(args) -> Limits:
    return Limits(values=args.max_values, layers=args.max_layers)


def shape_count(shape) -> int:
    """The number of values of a shape (exact: Python integers never overflow)."""
    n = 1
    for d in shape:
        n *= int(d)
    return n
