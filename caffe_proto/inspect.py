"""``python -m caffe_proto.inspect FILE [--json]``: what a Caffe file holds.

A table of layers (name, type, bottoms -> tops, blob shapes, parameter
count) and the detected dialect, for a prototxt, a caffemodel or an HDF5
weights file. Bad input: one line ``error: FILE: what`` on stderr, exit status 1
(the project's convention, `caffe_proto.cli`). Names from the file are shown through
`printable` (escape sequences escaped, very long names shortened); ``--json`` gives them
as they are, JSON-escaped.
"""
from __future__ import annotations

import json
import os
import sys

from . import cli
from . import limits as caffe_limits
from .binary import load_caffemodel
from .errors import CaffeFormatError
from .hdf5 import load_hdf5
from .limits import DEFAULT, Limits
from .net import Net
from .printable import printable
from .prototxt import load_prototxt
from .sniff import is_hdf5


def file_kind(path: str) -> str:
    """"hdf5", "caffemodel" or "prototxt", from the first bytes (then the name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as exc:
        raise CaffeFormatError(f"cannot read: {exc.strerror}", path=path) from exc
    if is_hdf5(head):
        return "hdf5"
    if path.endswith((".prototxt", ".pt", ".txt")):
        return "prototxt"
    if path.endswith(".caffemodel") or not head:
        return "caffemodel"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "caffemodel"
    return "prototxt" if text.strip() and "\x00" not in text else "caffemodel"


def load_any(path: str, limits: Limits = DEFAULT) -> tuple[str, Net]:
    kind = file_kind(path)
    reader = {"hdf5": load_hdf5, "caffemodel": load_caffemodel, "prototxt": load_prototxt}[kind]
    return kind, reader(path, limits=limits)


def summary(path: str, kind: str, net: Net) -> dict:
    layers = []
    for layer in net.layers:
        layers.append({
            "name": layer.name, "type": layer.type,
            "bottom": list(layer.bottom), "top": list(layer.top),
            "blob_shapes": [list(s) for s in layer.blob_shapes],
            "params": int(sum(b.size for b in layer.blobs)),
        })
    return {
        "file": path, "kind": kind, "name": net.name, "dialect": net.dialect,
        "inputs": {k: list(v) for k, v in net.inputs.items()},
        "layers": layers,
        "total_params": sum(entry["params"] for entry in layers),
    }


def format_table(info: dict) -> str:
    rows = [("#", "name", "type", "bottom -> top", "blobs", "params")]
    for i, entry in enumerate(info["layers"]):
        shapes = " ".join("x".join(map(str, s)) or "()" for s in entry["blob_shapes"])
        flow = (f"{','.join(map(printable, entry['bottom']))} -> "
                f"{','.join(map(printable, entry['top']))}")
        rows.append((str(i), printable(entry["name"]), printable(entry["type"]), flow, shapes,
                     f"{entry['params']:,}" if entry["params"] else ""))
    widths = [min(max(len(r[c]) for r in rows), 48) for c in range(len(rows[0]))]
    lines = [f"{info['file']}: {info['kind']}, dialect {info['dialect']}, "
             f"net '{printable(info['name'])}', {len(info['layers'])} layers, "
             f"{info['total_params']:,} parameters"]
    if info["inputs"]:
        lines.append("inputs: " + ", ".join(
            f"{printable(k)} {'x'.join(map(str, v)) or '(shape not declared)'}"
            for k, v in info["inputs"].items()))
    for r in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = cli.parser("caffe-inspect", __doc__.split("\n\n")[1])
    parser.add_argument("file", help="a .prototxt, .caffemodel or .caffemodel.h5")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    caffe_limits.add_options(parser)
    args = parser.parse_args(argv)
    path = os.fspath(args.file)

    def work():
        kind, net = load_any(path, caffe_limits.from_args(args))
        info = summary(path, kind, net)
        try:
            if args.json:
                json.dump(info, sys.stdout, indent=1)
                sys.stdout.write("\n")
            else:
                print(format_table(info))
        except BrokenPipeError:
            pass
        return 0
    return cli.main(work, errors=(CaffeFormatError, OSError))


if __name__ == "__main__":
    sys.exit(main())
