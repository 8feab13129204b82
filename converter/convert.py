"""caffemodel (or .caffemodel.h5) -> .pth that `psp_torch.load` turns into a ready model.

    python converter/convert.py pspnet101_VOC2012.caffemodel            # -> pspnet101_VOC2012.pth
    python converter/convert.py W.caffemodel --prototxt deploy.prototxt -o W.pth --verify --force
    python converter/convert.py pspnet101_VOC2012.caffemodel --format safetensors  # no pickle

A PSPNet (recognised by its layer names, from the prototxt or, without one, from
the caffemodel itself) becomes the clean `psp_torch.PSPNet` state_dict plus its
config; any other net of supported layers becomes CaffeNet weights keyed by
layer name with the prototxt text. Weights are matched by layer name, as Caffe
does; a deploy layer left without weights, or a blob of the wrong shape, is an
error and nothing is written. The output is written atomically and an existing
file is kept unless ``--force``.

Exit status: 0 done, 2 bad input (message on stderr), 3 ``--verify`` above tolerance.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: its folder must not shadow other modules
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

CONVERTER_VERSION = "1.0"
# --verify bound on max |PSPNet - CaffeNet| / max |CaffeNet|, by ResNet depth: the two run
# the same arithmetic in different float32 summation orders, which drifts through the
# depth exactly as a float32 forward drifts from Caffe's (the parity bounds of the
# psp_torch tests against the Caffe oracle: 2e-4 for PSPNet50, 1e-3 for PSPNet101).
VERIFY_RTOL = {50: 2e-4, 101: 1e-3}
VERIFY_RTOL_OTHER = 1e-3
# Caffe layer types whose blobs are learned weights (a deploy layer of these needs them).
WEIGHTED_TYPES = {"Convolution", "Deconvolution", "InnerProduct", "BN", "BatchNorm", "Scale",
                  "Bias", "PReLU", "ConvolutionData", "HoleConvolutionData", "BNData"}


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


def sha256_of(path, chunk=1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)


def _prototxt_text(prototxt) -> str:
    """The prototxt's text (a path, or the text itself as `load_prototxt` accepts)."""
    try:
        if Path(prototxt).is_file():
            return Path(prototxt).read_text()
    except (OSError, ValueError):
        pass
    return str(prototxt)


def _check_output(out: Path, force: bool):
    if out.exists() and not force:
        raise ConvertError(f"{out} exists; pass --force to overwrite it")
    if out.is_dir():
        raise ConvertError(f"{out} is a directory")
    parent = out.parent
    if not parent.is_dir():
        raise ConvertError(f"cannot write {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConvertError(f"cannot write {out}: {parent} is not writable")


def _describe(config) -> str:
    stride = "conv3_1_1x1_reduce" if config.stride_on_reduce else "conv3_1_3x3"
    return (f"PSPNet-{config.depth}, {config.num_classes} classes, crop {config.crop_size}, "
            f"stage-3 stride on {stride}, dilations {config.dilations[2]}/{config.dilations[3]}, "
            f"aux head {'yes' if config.aux else 'no'}")


def _pspnet_meta(config, source: Path, sha: str, config_from: str) -> dict:
    from psp_torch.config import is_standard_width, match_preset
    from psp_torch.metadata import generic_meta, preset_meta
    preset = match_preset(config)
    if preset is not None:
        meta = preset_meta(preset.name)
        if not is_standard_width(config):
            meta["name"] = f"{preset.name}_custom_width"
    else:
        meta = generic_meta(f"pspnet{config.depth}_{config.num_classes}classes",
                            config.num_classes, config.crop_size)
    meta.update(source=source.name, source_sha256=sha, converter_version=CONVERTER_VERSION,
                config_from=config_from)
    return meta


def _pspnet_payload(config, wnet, source, sha, config_from, log):
    from psp_torch.weights import WeightMismatch, state_dict_from_caffe
    try:
        state, report = state_dict_from_caffe(config, wnet, source=str(source))
    except WeightMismatch as exc:
        raise ConvertError(str(exc)) from None
    meta = _pspnet_meta(config, source, sha, config_from)
    log(f"recognised: {_describe(config)} -> {meta['name']}")
    for line in report.lines():
        log(line)
    return {"kind": "pspnet", "config": config.to_dict(), "state_dict": state, "meta": meta}


def _caffenet_payload(dnet, prototxt_text, wnet, source, sha, log):
    import torch
    from psp_torch.metadata import generic_meta
    weights = wnet.by_name()
    blobs, copied, values = {}, 0, 0
    for layer in dnet.layers:
        src = weights.get(layer.name)
        if layer.type in WEIGHTED_TYPES and (src is None or not src.blobs):
            raise ConvertError(f"{source}: deploy layer {layer.name!r} ({layer.type}) has no "
                               f"weights in the caffemodel")
        if src is not None and src.blobs:
            blobs[layer.name] = [torch.from_numpy(b.copy()) for b in src.blobs]
            copied += len(src.blobs)
            values += sum(int(b.size) for b in src.blobs)
    # Build it once: unsupported layers and blob shapes that do not fit fail here.
    _build_caffenet(dnet, wnet)
    used = {l.name for l in dnet.layers}
    log(f"generic net: {len(dnet.layers)} layers (CaffeNet weights keyed by layer name)")
    log(f"layers matched: {len(blobs)}")
    log(f"blobs copied: {copied} ({values:,} values)")
    extra = [l for l in wnet.layers if l.name not in used and l.blobs]
    if extra:
        log(f"layers ignored: {len(extra)}")
        for l in extra:
            log(f"  {l.name} ({l.type}): not in the prototxt")
    meta = generic_meta(dnet.name or Path(str(source)).stem)
    meta.update(source=Path(str(source)).name, source_sha256=sha,
                converter_version=CONVERTER_VERSION, config_from="prototxt")
    return {"kind": "caffenet", "prototxt": prototxt_text, "blobs": blobs, "meta": meta}


def _build_caffenet(dnet, wnet):
    from psp_torch.graph import CaffeNet
    try:
        cnet = CaffeNet(dnet)
        cnet.load_caffe_weights(wnet)
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise ConvertError(str(exc)) from None
    return cnet.eval()


def verify(payload, dnet, wnet, log, seed=0) -> float:
    """PSPNet from the payload vs CaffeNet straight from the Caffe files, same random input.

    Returns max |diff| / max |CaffeNet output|; raises VerifyError above the bound.
    """
    import torch
    from psp_torch.config import PSPNetConfig
    from psp_torch.pspnet import PSPNet
    config = PSPNetConfig.from_dict(payload["config"])
    model = PSPNet(config)
    model.load_state_dict(payload["state_dict"])
    model.eval()
    cnet = _build_caffenet(dnet, wnet)
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
    log(f"verify: max |PSPNet - CaffeNet| = "
        f"{diff:.3g} ({rel:.3g} of max |output| {scale:.3g}; tolerance {tol:g})")
    if not rel <= tol:
        raise VerifyError(f"verify failed: relative difference {rel:.3g} > {tol:g}")
    return rel


def warn_non_finite(wnet, source) -> int:
    """A warning on stderr per layer whose blobs hold NaN or Inf (converted as they are)."""
    import numpy as np
    bad = 0
    for layer in wnet.layers:
        nan = sum(int(np.isnan(b).sum()) for b in layer.blobs)
        inf = sum(int(np.isinf(b).sum()) for b in layer.blobs)
        if nan or inf:
            bad += 1
            print(f"convert.py: warning: {source}: layer {layer.name!r} has {nan} NaN and {inf} "
                  f"Inf weight values (copied as they are)", file=sys.stderr)
    return bad


def convert(caffemodel, prototxt=None, out=None, force=False, *, verify_model=False,
            log=print, fmt: str | None = None) -> Path:
    """Convert; returns the written path. Raises ConvertError (or CaffeFormatError).

    fmt: "pth" or "safetensors" (default: from `out`'s suffix, else "pth")."""
    from caffe_proto import CaffeFormatError, load_prototxt
    from psp_torch.config import NotAPSPNet, aux_width_of, config_from_net
    from psp_torch.deploy import deploy_net
    from psp_torch.io import format_of, save
    from psp_torch.weights import weights_net

    t0 = time.perf_counter()
    source = Path(caffemodel)
    fmt = fmt or (format_of(out) if out is not None else "pth")
    out = Path(out) if out is not None else default_output(source, fmt)
    _check_output(out, force)
    if not source.is_file():
        raise ConvertError(f"{source}: no such file")
    sha = sha256_of(source)
    wnet = weights_net(str(source))
    warn_non_finite(wnet, source)
    log(f"source: {source} ({source.stat().st_size:,} bytes, sha256 {sha[:16]}...)")
    if prototxt is not None:
        text = _prototxt_text(prototxt)
        dnet = load_prototxt(prototxt)
        try:
            config = config_from_net(dnet)
        except NotAPSPNet:
            payload = _caffenet_payload(dnet, text, wnet, source, sha, log)
            config = None
        else:
            aux = aux_width_of(wnet)
            if aux:
                config = config.with_aux(aux)
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
            verify(payload, dnet, wnet, log)
    try:
        save(payload, out, fmt)
    except RuntimeError as exc:                 # torch.save reports a failed write so
        raise OSError(f"cannot write {out}: {str(exc).splitlines()[0]} (is the disk full? "
                      f"nothing was written)") from None
    log(f"wrote {out} ({out.stat().st_size:,} bytes) in {time.perf_counter() - t0:.2f} s")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="convert.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("caffemodel", help=".caffemodel or .caffemodel.h5")
    ap.add_argument("--prototxt", help="deploy prototxt (needed for nets that are not PSPNets)")
    ap.add_argument("-o", "--output", help="output .pth (default: next to the input)")
    ap.add_argument("--verify", action="store_true",
                    help="run the converted PSPNet and CaffeNet on one random input and compare")
    ap.add_argument("--force", action="store_true", help="overwrite an existing output")
    ap.add_argument("--format", choices=("pth", "safetensors"),
                    help="model file format (default: from -o's suffix, else pth); "
                         "safetensors: tensors + a JSON header, no pickle")
    args = ap.parse_args(argv)
    try:
        convert(args.caffemodel, args.prototxt, args.output, args.force,
                verify_model=args.verify, fmt=args.format)
    except VerifyError as exc:
        print(f"convert.py: {exc}", file=sys.stderr)
        return 3
    except (ValueError, OSError) as exc:       # CaffeFormatError and ConvertError are ValueErrors
        print(f"convert.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convert.py: interrupted; nothing written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
