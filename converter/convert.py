"""caffemodel (or .caffemodel.h5) -> .pth that `psp_torch.load` turns into a ready model.

    python converter/convert.py pspnet101_VOC2012.caffemodel            # -> pspnet101_VOC2012.pth
    python converter/convert.py W.caffemodel --prototxt deploy.prototxt -o W.pth --verify --force
    python converter/convert.py pspnet101_VOC2012.caffemodel --format safetensors  # no pickle

A PSPNet (recognised by its layer names, from the prototxt or, without one, from
the caffemodel itself) becomes the clean `psp_torch.PSPNet` state_dict plus its
config; any other net of supported layers becomes CaffeNet weights keyed by
layer name with the prototxt text. Weights are matched by layer name, as Caffe
does; a learnable layer left without weights (``--allow-missing`` keeps it at its
initial values and lists it), a file none of whose weights the prototxt uses, or
a blob of the wrong shape, is an error and nothing is written. ``-o`` names the
file, or a folder to write into (an existing folder, or a path ending in ``/``).
The output is written atomically and an existing file is kept unless ``--force``.

Exit status (psp_torch/cli.py): 0 done, 1 bad input or a failed write (one line
``error: FILE: what``), 2 usage, 3 ``--verify`` above tolerance, 130 Ctrl-C.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: its folder must not shadow other modules
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

# (below the sys.path fix on purpose: a script's folder must not shadow these)
import numpy as np
import torch

from caffe_proto import CaffeFormatError, load_prototxt, load_weights
from caffe_proto import limits as caffe_limits
from caffe_proto.limits import DEFAULT, Limits
from caffe_proto.printable import printable
from psp_torch import cli
from psp_torch.caffe.deploy import deploy_net
from psp_torch.caffe.graph import CaffeNet
from psp_torch.caffe.read_config import NotAPSPNet, config_from_net, with_aux_of
from psp_torch.caffe.weights import WeightMismatch, state_dict_from_caffe
from psp_torch.config import PSPNetConfig
from psp_torch.digest import file_sha256
from psp_torch.io import format_of, save
from psp_torch.metadata import config_meta, generic_meta
from psp_torch.pspnet import PSPNet

CONVERTER_VERSION = "1.0"
# --verify bound on max |PSPNet - CaffeNet| / max |CaffeNet|, by ResNet depth: the two run
# the same arithmetic in different float32 summation orders, which drifts through the
# depth exactly as a float32 forward drifts from Caffe's (the parity bounds of the
# psp_torch tests against the Caffe oracle: 2e-4 for PSPNet50, 1e-3 for PSPNet101).
VERIFY_RTOL = {50: 2e-4, 101: 1e-3}
VERIFY_RTOL_OTHER = 1e-3


class ConvertError(ValueError):
    """A conversion that cannot be done; the message says why and what to pass."""


class VerifyError(ConvertError):
    """--verify found PSPNet and CaffeNet apart by more than the tolerance."""


def default_output(caffemodel, fmt: str = "pth") -> Path:
    """pspnet101_VOC2012.caffemodel(.h5) -> pspnet101_VOC2012.pth (or .safetensors) next to it."""
    p = Path(caffemodel)
    name = p.name
    for suffix in (".caffemodel.h5", ".caffemodel", ".h5"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = p.stem
    return p.with_name(name + (".safetensors" if fmt == "safetensors" else ".pth"))


def _prototxt_text(prototxt) -> str:
    """The prototxt's text (a path, or the text itself as `load_prototxt` accepts)."""
    try:
        if Path(prototxt).is_file():
            return Path(prototxt).read_text()
    except (OSError, ValueError):
        pass
    return str(prototxt)


def output_path(out, caffemodel, fmt: str | None = None) -> Path:
    """Where ``-o`` writes, as cp does: an existing folder, or a path ending in a separator,
    is a folder to write <stem>.pth (or .safetensors, by `fmt`) into; anything else is the
    file itself."""
    if out is None:
        return default_output(caffemodel, fmt or "pth")
    text = str(out)
    if Path(text).is_dir() or text.endswith(("/", os.sep)):
        return Path(text) / default_output(caffemodel, fmt or "pth").name
    return Path(text)


def _check_output(out: Path, force: bool) -> None:
    """Before any work: the output may be written (a missing folder is created later, when
    the file is written; an existing file only with --force)."""
    if out.is_dir():
        raise ConvertError(f"{out}: is a directory")
    if out.exists() and not force:
        raise ConvertError(f"{out}: exists; pass --force to overwrite it")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConvertError(f"{out}: cannot create its folder: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConvertError(f"{out}: cannot write: {parent} is not writable")


def _describe(config) -> str:
    stride = "conv3_1_1x1_reduce" if config.stride_on_reduce else "conv3_1_3x3"
    return (f"PSPNet-{config.depth}, {config.num_classes} classes, crop {config.crop_size}, "
            f"stage-3 stride on {stride}, dilations {config.dilations[2]}/{config.dilations[3]}, "
            f"aux head {'yes' if config.aux else 'no'}")


def _pspnet_meta(config, source: Path, sha: str, config_from: str) -> dict:
    meta = config_meta(config)
    meta.update(source=source.name, source_sha256=sha, converter_version=CONVERTER_VERSION,
                config_from=config_from)
    return meta


def _pspnet_payload(config, wnet, source, sha, config_from, log):
    try:
        state, report = state_dict_from_caffe(config, wnet, source=str(source))
    except WeightMismatch as exc:
        raise ConvertError(str(exc)) from None
    meta = _pspnet_meta(config, source, sha, config_from)
    log(f"recognised: {_describe(config)} -> {meta['name']}")
    for line in report.lines():
        log(line)
    return {"kind": "pspnet", "config": config.to_dict(), "state_dict": state, "meta": meta}


def _caffenet_payload(dnet, prototxt_text, wnet, source, sha, log, allow_missing=False,
                      limits: Limits = DEFAULT):
    cnet, report = _build_caffenet(dnet, wnet, limits)
    types = {l.name: l.type for l in dnet.layers}
    weighted = [l for l in wnet.layers if l.blobs]
    if report.missing:
        listing = ", ".join(f"{printable(n)} ({printable(types[n])})" for n in report.missing)
        if not allow_missing:
            raise ConvertError(f"{source}: {len(report.missing)} learnable layer(s) of the "
                               f"prototxt have no weights in it: {listing} (wrong prototxt? "
                               f"--allow-missing keeps them at their initial values)")
    if weighted and not report.loaded and not allow_missing:
        raise ConvertError(f"{source}: none of its {len(weighted)} layers with weights is in the "
                           f"prototxt (wrong prototxt?); nothing would be converted")
    blobs = {name: [torch_tensor(b) for b in arrays]
             for name, arrays in cnet.caffe_blobs().items()}
    loaded = set(report.loaded)
    copied = sum(len(l.blobs) for l in wnet.layers if l.name in loaded)
    values = sum(int(b.size) for l in wnet.layers if l.name in loaded for b in l.blobs)
    used = set(types)
    log(f"generic net: {len(dnet.layers)} layers (CaffeNet weights keyed by layer name)")
    log(f"layers matched: {len(report.loaded)}")
    log(f"blobs copied: {copied} ({values:,} values)")
    if report.missing:
        log(f"left at initial values (--allow-missing): {len(report.missing)}")
        for n in report.missing:
            log(f"  {printable(n)} ({printable(types[n])}): no weights in "
                f"{Path(str(source)).name}; stored with the layer's initial values (untrained)")
    extra = [l for l in wnet.layers if l.name not in used and l.blobs]
    if extra:
        log(f"layers ignored: {len(extra)}")
        for l in extra:
            log(f"  {printable(l.name)} ({printable(l.type)}): not in the prototxt")
    meta = generic_meta(dnet.name or Path(str(source)).stem)
    meta.update(source=Path(str(source)).name, source_sha256=sha,
                converter_version=CONVERTER_VERSION, config_from="prototxt")
    if report.missing:
        meta["initial_values"] = list(report.missing)
    return {"kind": "caffenet", "prototxt": prototxt_text, "blobs": blobs, "meta": meta}


def torch_tensor(array):
    return torch.from_numpy(array.copy())


def _build_caffenet(dnet, wnet, limits: Limits = DEFAULT):
    """(CaffeNet in eval mode with the weights copied by name, its WeightReport)."""
    try:
        cnet = CaffeNet(dnet, limits=limits)
        report = cnet.load_caffe_weights(wnet)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise ConvertError(str(exc)) from None
    return cnet.eval(), report


def verify(payload, dnet, wnet, log, seed=0, limits: Limits = DEFAULT) -> float:
    """PSPNet from the payload vs CaffeNet straight from the Caffe files, same random input.

    Returns max |diff| / max |CaffeNet output|; raises VerifyError above the bound. CaffeNet
    is built first: it checks every blob of the net at the input size against `limits`.
    """
    config = PSPNetConfig.from_dict(payload["config"])
    cnet, _ = _build_caffenet(dnet, wnet, limits)
    model = PSPNet(config)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    log(f"verify: running PSPNet and CaffeNet on one 1x3x{config.crop_size}x{config.crop_size} "
        f"random input ...")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, config.crop_size, config.crop_size, generator=g) * 50
    with torch.no_grad():
        ours = model(x)
        ref = cnet(data=x)
        ref = ref["conv6_interp"] if isinstance(ref, dict) else ref
    tol = VERIFY_RTOL.get(config.depth, VERIFY_RTOL_OTHER)
    diff = float((ours - ref).abs().max())
    scale = float(ref.abs().max())
    rel = diff / max(scale, 1e-30)
    log(verify_line(diff, scale, tol))
    if not rel <= tol:
        raise VerifyError(f"verify failed: {verify_line(diff, scale, tol)[len('verify: '):]}")
    return rel


def verify_line(diff: float, scale: float, rtol: float) -> str:
    """The difference and the tolerance as the same kind of number (relative to the output's
    range), with the absolute figures of both next to them."""
    rel = diff / max(scale, 1e-30)
    verdict = "within" if rel <= rtol else "ABOVE"
    return (f"verify: max |PSPNet - CaffeNet| / max |CaffeNet| = {rel:.3g}, {verdict} the "
            f"tolerance {rtol:.3g} (absolute: {diff:.3g} against {rtol * scale:.3g}; "
            f"max |output| {scale:.3g})")


def warn_non_finite(wnet, source) -> int:
    """A warning on stderr per layer whose blobs hold NaN or Inf (converted as they are)."""
    bad = 0
    for layer in wnet.layers:
        nan = sum(int(np.isnan(b).sum()) for b in layer.blobs)
        inf = sum(int(np.isinf(b).sum()) for b in layer.blobs)
        if nan or inf:
            bad += 1
            print(f"convert.py: warning: {source}: layer '{printable(layer.name)}' has {nan} NaN "
                  f"and {inf} Inf weight values (copied as they are)", file=sys.stderr)
    return bad


def convert(caffemodel, prototxt=None, out=None, force=False, *, verify_model=False,
            allow_missing=False, log=print, fmt: str | None = None,
            limits: Limits = DEFAULT) -> Path:
    """Convert; returns the written path. Raises ConvertError (or CaffeFormatError).

    `out`: the model file, or a folder to write into (see `output_path`); missing folders
    are created. `allow_missing`: a generic net's learnable layers without weights keep
    their initial values (listed, and named in the meta) instead of failing. `fmt`: "pth"
    or "safetensors" (default: from `out`'s suffix, else "pth"). `limits`: the budgets of
    the sizes the Caffe files declare (`caffe_proto.limits`)."""
    t0 = time.perf_counter()
    source = Path(caffemodel)
    out = output_path(out, source, fmt)
    fmt = fmt or format_of(out)
    _check_output(out, force)
    if not source.is_file():
        raise ConvertError(f"{source}: no such file")
    sha = file_sha256(source)
    wnet = load_weights(str(source), limits=limits)
    warn_non_finite(wnet, source)
    log(f"source: {source} ({source.stat().st_size:,} bytes, sha256 {sha[:16]}...)")
    if prototxt is not None:
        text = _prototxt_text(prototxt)
        dnet = load_prototxt(prototxt, limits=limits)
        try:
            config = config_from_net(dnet)
        except NotAPSPNet:
            payload = _caffenet_payload(dnet, text, wnet, source, sha, log, allow_missing,
                                        limits)
            config = None
        else:
            config = with_aux_of(config, wnet)
            payload = _pspnet_payload(config, wnet, source, sha, "prototxt", log)
    else:
        if not any(l.blobs for l in wnet.layers):
            raise CaffeFormatError("holds no weights (is it a prototxt or a solver state?)",
                                   path=str(source))
        try:
            config = config_from_net(wnet)
        except NotAPSPNet as exc:
            raise ConvertError(f"{exc}. This file is not recognised as a PSPNet of the Caffe "
                               f"release: pass its deploy definition with --prototxt") from None
        dnet = deploy_net(config)
        payload = _pspnet_payload(config, wnet, source, sha, "weights", log)
    if verify_model:
        if config is None:
            log("verify: a generic net is stored as CaffeNet itself; nothing to compare")
        else:
            verify(payload, dnet, wnet, log, limits=limits)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        save(payload, out, fmt)
    except RuntimeError as exc:                 # torch.save reports a failed write so
        raise OSError(f"cannot write {out}: {str(exc).splitlines()[0]} (is the disk full? "
                      f"nothing was written)") from None
    log(f"wrote {out} ({out.stat().st_size:,} bytes) in {time.perf_counter() - t0:.2f} s")
    return out


def main(argv=None) -> int:
    ap = cli.parser("convert.py", __doc__)
    ap.add_argument("caffemodel", help=".caffemodel or .caffemodel.h5")
    ap.add_argument("--prototxt", help="deploy prototxt (needed for nets that are not PSPNets)")
    ap.add_argument("-o", "--output", help="output .pth, or a folder to write into (an existing "
                    "one, or ending in /); default: next to the input")
    ap.add_argument("--verify", action="store_true",
                    help="run the converted PSPNet and CaffeNet on one random input and compare")
    ap.add_argument("--allow-missing", action="store_true",
                    help="a generic net's learnable layers without weights keep their initial "
                    "values (listed) instead of failing")
    ap.add_argument("--force", action="store_true", help="overwrite an existing output")
    ap.add_argument("--format", choices=("pth", "safetensors"),
                    help="model file format (default: from -o's suffix, else pth); "
                         "safetensors: tensors + a JSON header, no pickle")
    caffe_limits.add_options(ap)
    args = ap.parse_args(argv)

    def work():
        try:
            convert(args.caffemodel, args.prototxt, args.output, args.force,
                    verify_model=args.verify, allow_missing=args.allow_missing, fmt=args.format,
                    limits=caffe_limits.from_args(args))
        except VerifyError as exc:
            print(f"error: {args.caffemodel}: {exc}", file=sys.stderr)
            return 3
        return 0
    return cli.main(work, interrupted="interrupted; nothing written")


if __name__ == "__main__":
    sys.exit(main())
