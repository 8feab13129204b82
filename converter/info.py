"""What a model file is: format, network config, classes, parameters, MACs, sha256, provenance.

    pspnet-info MODEL [--size H W] [--json]
    python converter/info.py pspnet101_VOC2012.pth
    python converter/info.py pspnet50_ADE20K.caffemodel --size 713 713

MODEL: a .pth or .safetensors written by this project (read without unpickling anything but
plain data), or a released PSPNet's .caffemodel / .caffemodel.h5 (its config read off its
layers, as the converter does). MACs: one forward at --size (default: the model's crop size),
counted by psp_torch.flops on shapes only. Names from the file are printed through
caffe_proto.printable. Bad input: one line ``error: FILE: what``, exit status 1.
"""
from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

if __package__ in (None, ""):  # run as a script: its folder must not shadow other modules
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import torch

from caffe_proto.printable import printable
from caffe_proto.sniff import is_hdf5, looks_like_caffemodel
from psp_torch import cli
from psp_torch.caffe.read_config import NotAPSPNet, config_from_net, with_aux_of
from psp_torch.caffe.weights import weights_net
from psp_torch.config import PSPNetConfig
from psp_torch.digest import file_sha256
from psp_torch.flops import count_macs
from psp_torch.io import FORMAT, ModelFileError, load, read
from psp_torch.metadata import config_meta
from psp_torch.pspnet import PSPNet
from psp_torch.safetensors_file import is_safetensors

# what a user feeds the model and reads out of it; every other meta key is provenance
USAGE_KEYS = ("name", "dataset", "num_classes", "class_names", "palette", "crop_size",
              "base_size", "mean_rgb", "channel_order")
WIDTH = 100


def file_format(path: Path) -> str:
    """"safetensors", "pth", "caffemodel" or "caffemodel.h5", from the first bytes."""
    if is_safetensors(path):
        return "safetensors"
    with open(path, "rb") as f:
        head = f.read(4096)
    if is_hdf5(head):
        return "caffemodel.h5"
    if looks_like_caffemodel(head):
        return "caffemodel"
    return "pth"                         # read() says what it is when it is not one


def _config(payload: dict, path: Path) -> PSPNetConfig:
    try:
        return PSPNetConfig.from_dict(dict(payload["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: config: {printable(exc)}") from None


def _pspnet_on_meta(config: PSPNetConfig) -> PSPNet:
    """The network of `config` with no weights (meta tensors): counts and shapes only."""
    with torch.device("meta"):
        return PSPNet(config)


def _from_model_file(path: Path) -> tuple[dict, torch.nn.Module | None, int]:
    """(meta, network, values stored) of a .pth / .safetensors."""
    payload = read(path, "cpu")
    meta = dict(payload.get("meta") or {})
    kind = payload.get("kind")
    if kind == "pspnet":
        net = _pspnet_on_meta(_config(payload, path))
        tensors = payload.get("state_dict") or {}
        stored = sum(int(t.numel()) for t in tensors.values())
        return {**meta, "kind": kind, "config": net.config.to_dict()}, net, stored
    if kind == "caffenet":
        net = load(path)
        stored = sum(int(t.numel()) for ts in (payload.get("blobs") or {}).values() for t in ts)
        return {**meta, "kind": kind}, net, stored
    raise ModelFileError(f"{path}: unknown model kind {printable(kind)!s}")


def _from_caffemodel(path: Path) -> tuple[dict, torch.nn.Module | None, int]:
    """(meta, network, values stored) of a released PSPNet's Caffe weights."""
    wnet = weights_net(str(path))
    stored = sum(int(b.size) for layer in wnet.layers for b in layer.blobs)
    try:
        config = config_from_net(wnet)
    except NotAPSPNet as exc:
        return {"kind": "caffe net", "not_a_pspnet": printable(exc)}, None, stored
    config = with_aux_of(config, wnet)
    net = _pspnet_on_meta(config)
    return {**config_meta(config), "kind": "pspnet (recognised by its layers)",
            "config": config.to_dict()}, net, stored


def describe(path, size: tuple[int, int] | None = None) -> dict:
    """Everything `pspnet-info` reports about the model file `path`, as plain data."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a model file", str(path))
    if not path.is_file():
        raise FileNotFoundError(2, "no such model file", str(path))
    fmt = file_format(path)
    meta, net, stored = (_from_caffemodel if fmt.startswith("caffemodel")
                         else _from_model_file)(path)
    info = {"file": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(path),
            "format": fmt if fmt.startswith("caffemodel") or fmt == "safetensors"
            else f"pth ({FORMAT})", **meta, "values_stored": stored}
    if net is not None:
        info["parameters"] = sum(int(p.numel()) for p in net.parameters())
        aux = getattr(net, "aux", None)
        if aux is not None:
            info["aux_parameters"] = sum(int(p.numel()) for p in aux.parameters())
        crop = meta.get("crop_size") or (meta.get("config") or {}).get("crop_size")
        h, w = size or (crop, crop)
        if h and w:
            info["macs_size"] = [int(h), int(w)]
            info["macs"] = int(count_macs(net, (1, 3, int(h), int(w))))
    return info


def _names(names) -> str:
    """'0 wall, 1 building, ...' wrapped between names (a name is never split)."""
    items = [f"{i} {printable(n, limit=60)}".replace(" ", "\xa0") for i, n in enumerate(names)]
    return textwrap.fill(", ".join(items), WIDTH, initial_indent="  ",
                         subsequent_indent="  ").replace("\xa0", " ")


def format_text(info: dict) -> str:
    p = printable
    lines = [f"file: {p(info['file'])} ({info['bytes']:,} bytes)",
             f"sha256: {info['sha256']}",
             f"format: {p(info['format'])}, kind {p(info.get('kind'))}"]
    if info.get("not_a_pspnet"):
        lines.append(f"not a PSPNet of the release: {info['not_a_pspnet']} "
                     f"(pspnet-convert --prototxt converts it as a generic Caffe net)")
    if info.get("name") is not None:
        lines.append(f"name: {p(info['name'])}")
    if info.get("config"):
        cfg = ", ".join(f"{k}={p(v, limit=80)}" for k, v in info["config"].items())
        lines.append(textwrap.fill("config: " + cfg, WIDTH, subsequent_indent="  "))
    if info.get("dataset") is not None:
        lines.append(f"dataset: {p(info['dataset'])}")
    if info.get("crop_size") or info.get("base_size") or info.get("mean_rgb"):
        lines.append(f"input: crop {p(info.get('crop_size'))}, base size "
                     f"{p(info.get('base_size'))}, mean (RGB) {p(info.get('mean_rgb'))}, "
                     f"channel order {p(info.get('channel_order'))}")
    names = info.get("class_names")
    n = info.get("num_classes")
    if isinstance(names, list) and names:
        lines.append(f"classes: {len(names)}")
        lines.append(_names(names))
    elif n is not None:
        lines.append(f"classes: {p(n)} (no names in the file)")
    if "parameters" in info:
        aux = info.get("aux_parameters")
        lines.append(f"parameters: {info['parameters']:,}"
                     + (f" (aux head {aux:,}; deployed without it "
                        f"{info['parameters'] - aux:,})" if aux else ""))
    lines.append(f"values stored: {info['values_stored']:,}")
    if "macs" in info:
        h, w = info["macs_size"]
        lines.append(f"MACs at {h}x{w}: {info['macs'] / 1e9:.2f} G ({info['macs']:,})")
    prov = {k: v for k, v in info.items() if k not in USAGE_KEYS and k not in (
        "file", "bytes", "sha256", "format", "kind", "config", "values_stored", "parameters",
        "aux_parameters", "macs", "macs_size", "not_a_pspnet")}
    if prov:
        lines.append("provenance:")
        for k, v in prov.items():
            text = v if isinstance(v, str) else json.dumps(v, default=str)
            lines.append(f"  {p(k, limit=60)}: {p(text, limit=300)}")
    return "\n".join(lines)


def _plain(info: dict) -> dict:
    """JSON-safe (json.dumps writes control characters as \\u escapes)."""
    return json.loads(json.dumps(info, default=str))


def main(argv=None) -> int:
    ap = cli.parser("pspnet-info", __doc__)
    ap.add_argument("model", help=".pth / .safetensors of this project, or a released PSPNet's "
                                  ".caffemodel / .caffemodel.h5")
    ap.add_argument("--size", nargs=2, type=cli.positive_int, metavar=("H", "W"),
                    help="input size the MACs are counted at (default: the model's crop size)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = ap.parse_args(argv)

    def work():
        info = describe(args.model, tuple(args.size) if args.size else None)
        print(json.dumps(_plain(info), indent=1) if args.json else format_text(info))
        return 0
    return cli.main(work, interrupted="interrupted; nothing written")


if __name__ == "__main__":
    sys.exit(main())
