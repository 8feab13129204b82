""".pth -> deploy prototxt + caffemodel (upstream binary format), the way back to Caffe;
or -> ONNX (--onnx), for ONNX Runtime, TensorRT and the like.

    python converter/export.py pspnet101_VOC2012.pth -o caffe_out/
    # -> caffe_out/pspnet101_VOC2012.prototxt, caffe_out/pspnet101_VOC2012.caffemodel
    python converter/export.py pspnet101_VOC2012.pth --onnx pspnet101_VOC2012.onnx
    # -> one ONNX graph, batch and input size dynamic (converter/onnx_export.py)

A PSPNet is written in the release's own layout (`psp_torch.caffe.deploy`, from the one
description of its layers in `psp_torch.caffe.structure`): the prototxt is the deploy
net, layer for layer as the authors' file; the caffemodel holds the same layers with
their blobs in Caffe order (conv weight, bias; BN slope, bias, mean, variance as
1xCx1x1), plus the auxiliary head (conv4_24, conv4_24/bn, conv6_1) when the model has
one. Every PSPNetConfig variant (bins, MAX pooling, no reduction, no pyramid, any depth)
is written; one the Caffe layout cannot express is refused before anything is written.
The prototxt is for the training crop unless --input-size asks for another input (its
pyramid Interp sizes and input shape are fixed numbers). A CaffeNet conversion gives
back its own prototxt and its blobs by layer name. Values are copied bit for bit.
The files of one run (prototxt, caffemodel, and the ONNX file with -o and --onnx) are
written all or none: a failure removes the ones this run created.

Exit status (psp_torch/cli.py): 0 done, 1 bad input or an output that exists (pass
--force), one line ``error: FILE: what``; 2 usage; 130 Ctrl-C.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: its folder must not shadow other modules
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

# (below the sys.path fix on purpose: a script's folder must not shadow these)
from caffe_proto import net_to_prototxt, save_caffemodel
from caffe_proto.atomic import atomic_write_all
from caffe_proto.printable import printable
from caffe_proto.prototxt import parse_prototxt
from psp_torch import limits as L
from psp_torch import cli
from psp_torch.caffe.deploy import deploy_net
from psp_torch.caffe.structure import NoCaffeLayout
from psp_torch.caffe.weights import caffe_blobs
from psp_torch.config import PSPNetConfig
from psp_torch.io import load, read
from pspnet_caffe.converter.onnx_export import OPSET, export_onnx


class ExportError(ValueError):
    pass


def export_nets(payload: dict, input_size: tuple | None = None):
    """(deploy Net without blobs, weights Net with blobs) of a .pth payload; the deploy net
    for an (H, W) input when `input_size` is given (a PSPNet's), else for the crop."""
    kind = payload.get("kind")
    if kind == "pspnet":
        config = PSPNetConfig.from_dict(payload["config"])
        name = payload["meta"].get("name")
        try:
            deploy = deploy_net(config, name, input_size=input_size)
            weights = deploy_net(config, name, aux=config.aux)
        except (NoCaffeLayout, ValueError) as exc:
            raise ExportError(f"cannot be written as a Caffe net: {exc}") from None
        blobs = caffe_blobs(config, payload["state_dict"])
        for layer in weights.layers:
            layer.blobs = blobs.get(layer.name, [])
        return deploy, weights
    if kind == "caffenet":
        if input_size is not None:
            raise ExportError("--input-size is for PSPNets; a CaffeNet is written with its "
                              "own prototxt")
        # a model file's prototxt is text, never a path to open
        deploy = parse_prototxt(payload["prototxt"], "its prototxt")
        weights = parse_prototxt(payload["prototxt"], "its prototxt")
        for layer in weights.layers:
            layer.blobs = [t.detach().cpu().contiguous().numpy()
                           for t in payload["blobs"].get(layer.name, [])]
        return deploy, weights
    raise ExportError(f"unknown model kind {printable(repr(kind), 40)}")


def export(pth, out_dir, *, name: str | None = None, force: bool = False,
           input_size: tuple | None = None, limits: L.Limits | None = None,
           log=print) -> tuple[Path, Path]:
    """Write <out_dir>/<name>.prototxt and <name>.caffemodel (name: the .pth's stem);
    the prototxt for an (H, W) input when `input_size` is given, else for the crop.
    Both or neither: nothing is written when the model cannot be expressed in Caffe
    (ExportError), and a failed write leaves neither file (nor a folder this call made)."""
    out_dir = Path(out_dir)
    proto_path, model_path = _targets(pth, out_dir, name)
    for p in (proto_path, model_path):
        if p.exists() and not force:
            raise ExportError(f"{p}: exists; pass --force to overwrite it")
    payload = read(pth, limits=limits)
    try:
        deploy, weights = export_nets(payload, input_size)
    except ExportError as exc:
        raise ExportError(f"{pth}: {exc}") from None
    text = net_to_prototxt(deploy)
    made = _missing_folders(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_all([(proto_path, lambda tmp: Path(tmp).write_text(text)),
                          (model_path, lambda tmp: save_caffemodel(weights, tmp))])
    except BaseException:
        _remove_empty(made)
        raise
    n_blobs = sum(len(l.blobs) for l in weights.layers)
    log(f"wrote {proto_path} ({len(deploy.layers)} layers)")
    log(f"wrote {model_path} ({n_blobs} blobs, {model_path.stat().st_size:,} bytes)")
    return proto_path, model_path


def _targets(pth, out_dir, name: str | None) -> tuple[Path, Path]:
    """<out_dir>/<name>.prototxt and <name>.caffemodel (name: the .pth's stem)."""
    name = name or Path(pth).stem
    return Path(out_dir) / f"{name}.prototxt", Path(out_dir) / f"{name}.caffemodel"


def _missing_folders(folder: Path) -> list[Path]:
    """The folders `mkdir(parents=True)` would create for `folder`, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove folders this run made (deepest first), as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


def export_onnx_file(pth, out, *, force: bool = False, limits: L.Limits | None = None,
                     log=print) -> Path:
    """Write the ONNX graph of a PSPNet model file (see converter/onnx_export.py)."""
    out = Path(out)
    if out.exists() and not force:
        raise ExportError(f"{out}: exists; pass --force to overwrite it")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: cannot write: {out.parent} is not a directory")
    model = load(pth, limits=limits)
    if not hasattr(model, "config"):
        raise ExportError(f"{pth}: ONNX export is for PSPNets; this file holds a generic "
                          f"CaffeNet (kind caffenet)")
    export_onnx(model, out)
    log(f"wrote {out} (opset {OPSET}; input data (N, 3, H, W), output scores "
        f"(N, {model.config.num_classes}, H, W), N/H/W dynamic; "
        f"{out.stat().st_size:,} bytes)")
    return out


def main(argv=None) -> int:
    ap = cli.parser("export.py", __doc__)
    ap.add_argument("pth", help="a .pth written by convert.py or psp_torch.io.save_pspnet")
    ap.add_argument("-o", "--output-dir", help="folder for <name>.prototxt + <name>.caffemodel "
                    "(created if missing; default: next to the .pth, as convert.py does; "
                    "with --onnx and no -o, no Caffe files)")
    ap.add_argument("--onnx", metavar="OUT.onnx", help="write the model as ONNX to this file")
    ap.add_argument("--name", help="file stem (default: the .pth's)")
    ap.add_argument("--input-size", nargs=2, type=cli.positive_int, metavar=("H", "W"),
                    help="write the deploy prototxt for this input size (its input shape "
                         "and pyramid Interp sizes; default: the training crop)")
    ap.add_argument("--force", action="store_true", help="overwrite existing files")
    L.add_option(ap)
    args = ap.parse_args(argv)
    limits = L.from_args(args)
    caffe = args.output_dir is not None or args.onnx is None
    out = args.output_dir if args.output_dir is not None else Path(args.pth).parent

    def work():
        new = []        # files this run creates: removed again when a later one fails
        made = _missing_folders(Path(out)) if caffe else []
        try:
            if caffe:
                pair = _targets(args.pth, out, args.name)
                fresh = [p for p in pair if not p.exists()]
                export(args.pth, out, name=args.name, force=args.force,
                       input_size=tuple(args.input_size) if args.input_size else None,
                       limits=limits)
                new += fresh
            if args.onnx is not None:
                export_onnx_file(args.pth, args.onnx, force=args.force, limits=limits)
        except BaseException:
            for p in new:
                p.unlink(missing_ok=True)
            _remove_empty(made)
            raise
    return cli.main(work, interrupted="interrupted; nothing half-written (files are written "
                    "atomically)")


if __name__ == "__main__":
    sys.exit(main())
