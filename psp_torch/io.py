"""The project's .pth format: a plain dict that `torch.load(weights_only=True)` reads.

Above both sides of psp_torch: `load` builds a PSPNet (model side) or a CaffeNet (Caffe
side, `psp_torch.caffe.graph`) from the file's kind.

    {"format": "psp_torch.pth/1",
     "kind": "pspnet" | "caffenet",
     "config": PSPNetConfig.to_dict()           (kind pspnet)
     "state_dict": {key: tensor}                (kind pspnet: PSPNet keys, see psp_torch.caffe.names)
     "prototxt": deploy prototxt text           (kind caffenet; text, never a path)
     "blobs": {caffe layer name: [tensor, ...]} (kind caffenet: Caffe shapes, Caffe order)
     "meta": {name, dataset, num_classes, ..., source, source_sha256, converter_version}}

Only tensors, strings, numbers, lists and dicts: nothing in it can run code. `load`
never unpickles anything else (a file that would need it is refused unread). Every
payload, whichever its format, is checked by `check_payload` before anything is built:
the config's types and sizes (`psp_torch.config_check`, against `psp_torch.limits`), the
state_dict against the network the config describes, the meta (`metadata.check_meta`).

The same payload can be written as safetensors (`save(..., fmt="safetensors")`, or a
path ending in .safetensors): see `psp_torch.safetensors_file`. `read` and `load`
recognise such a file by its first bytes, whatever its name.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from caffe_proto import CaffeFormatError, load_prototxt
from caffe_proto.atomic import atomic_write  # noqa: F401  (re-exported for the converter and eval)
from caffe_proto.printable import printable
from caffe_proto.prototxt import parse_prototxt
from caffe_proto.sniff import describe_foreign, is_hdf5, looks_like_caffemodel, looks_like_prototxt

from .caffe.graph import CaffeNet
from .config import PSPNetConfig
from .config_check import check_config, check_state_dict
from .devices import check_device
from .limits import DEFAULT, Limits, ModelLimitError, refuse
from .metadata import check_meta
from .pspnet import PSPNet
from .safetensors_file import SUFFIX, decode, encode, is_safetensors

from .compiled import compile_model

FORMAT = "psp_torch.pth/1"


class ModelFileError(ValueError):
    """A .pth that is not a model file of this project (message names the file)."""


FORMATS = ("pth", "safetensors")


def format_of(path) -> str:
    """"safetensors" for a path ending in .safetensors, else "pth"."""
    return "safetensors" if str(path).endswith(SUFFIX) else "pth"


def save(payload: dict, path, fmt: str | None = None) -> Path:
    """Write a payload dict (see module doc) atomically; fmt "pth" or "safetensors"
    (default: from the path's suffix)."""
    fmt = fmt or format_of(path)
    if fmt == "safetensors":
        data = encode(payload)
        return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    if fmt != "pth":
        raise ValueError(f"unknown model file format {fmt!r} (known: {', '.join(FORMATS)})")
    payload = {"format": FORMAT, **payload}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def save_pspnet(model, path, meta: dict | None = None, fmt: str | None = None) -> Path:
    """A PSPNet's config, state_dict and meta as a .pth or .safetensors (atomic)."""
    return save({"kind": "pspnet", "config": model.config.to_dict(),
                 "state_dict": model.state_dict(), "meta": dict(meta or model.meta)}, path, fmt)


CONVERT_FIRST = "convert it first with pspnet-convert (python converter/convert.py)"


def not_a_model_file(path) -> str | None:
    """Why `path` is no .pth, told from its first bytes (nothing is unpickled), or None when
    it may be one (a zip archive, as torch.save writes, or an old-style torch pickle)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head:
        return "empty file (0 bytes)"
    if head.startswith(b"PK\x03\x04") or (head[0] == 0x80 and 2 <= head[1:2][0] <= 5
                                         if len(head) > 1 else False):
        return None
    todo = CONVERT_FIRST
    if is_hdf5(head):
        return f"this is an HDF5 file (Caffe's .caffemodel.h5 weights?), not a .pth: {todo}"
    if looks_like_caffemodel(head):
        return f"this is a Caffe caffemodel, not a .pth: {todo}"
    if looks_like_prototxt(head[:64]) and _parses_as_prototxt(path):
        return ("this is a Caffe prototxt (a net definition, no weights), not a .pth: convert "
                "the caffemodel it describes (pspnet-convert X.caffemodel --prototxt "
                f"{Path(path).name})")
    foreign = describe_foreign(head[:16])
    if foreign:
        return f"not a model file: this looks like {foreign}"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:512]):
        return "not a model file: this is a text file"
    return "not a model file (neither a torch .pth nor a Caffe file)"


def _parses_as_prototxt(path) -> bool:
    if Path(path).stat().st_size > 16 << 20:
        return False
    try:
        load_prototxt(path)
    except (CaffeFormatError, ValueError, OSError):
        return False
    return True


def _unpickling_refusal(exc: Exception) -> str:
    """What torch refused, without its advice to load with weights_only=False."""
    for line in str(exc).splitlines():
        line = line.strip()
        if "GLOBAL" in line or line.lower().startswith(("unsupported", "weightsunpickler")):
            return printable(line.rstrip("."), 160)
    return type(exc).__name__


def torch_complaint(exc: BaseException) -> str:
    """What `torch.load(weights_only=True)` said, in one line, without its advice to unpickle
    (any line that mentions weights_only): for every reader of torch files."""
    if isinstance(exc, pickle.UnpicklingError):
        return f"it holds something other than tensors and plain data ({_unpickling_refusal(exc)})"
    if isinstance(exc, RecursionError):
        return "nested deeper than Python reads"
    lines = [ln.strip() for ln in str(exc).splitlines()
             if ln.strip() and "weights_only" not in ln and "unpickl" not in ln.lower()]
    return printable(lines[0] if lines else type(exc).__name__, 160)


def check_payload(payload, path, limits: Limits | None = None) -> dict:
    """A payload read from `path` (any reader), checked: its kind, every config field and
    size (`psp_torch.config_check`), the state_dict against the network its config describes,
    a CaffeNet's prototxt (text, never a path) and blobs (tensors), the meta
    (`psp_torch.metadata.check_meta`). ModelFileError, or `psp_torch.limits.ModelLimitError`
    for a size above its limit, naming the file and what is wrong; the payload with its meta
    as a dict otherwise."""
    if not isinstance(payload, dict):
        raise ModelFileError(f"{path}: not a psp_torch model file (expected a dict with "
                             f"format {FORMAT!r}; plain state_dicts need PSPNet(config))")
    kind = payload.get("kind")
    try:
        meta = check_meta(payload.get("meta"), path, limits)
        if kind == "pspnet":
            config = check_config(payload.get("config"), path, limits)
            check_state_dict(payload.get("state_dict"), config, path)
            return {**payload, "config": config.to_dict(), "meta": meta}
        if kind == "caffenet":
            _check_caffenet(payload, path)
            return {**payload, "meta": meta}
    except ModelLimitError:
        raise
    except ValueError as exc:               # ConfigError, MetaError
        raise ModelFileError(str(exc)) from None
    raise ModelFileError(f"{path}: unknown model kind {printable(repr(kind), 40)} "
                         f"(known: pspnet, caffenet)")


def _check_caffenet(payload: dict, path) -> None:
    text = payload.get("prototxt")
    if not isinstance(text, str):
        raise ModelFileError(f"{path}: its prototxt is {type(text).__name__}, not the text of "
                             f"a net")
    try:                                    # text, never a path to open
        parse_prototxt(text, f"{path} (its prototxt)")
    except CaffeFormatError as exc:
        raise ModelFileError(str(exc)) from None
    blobs = payload.get("blobs")
    if not isinstance(blobs, dict):
        raise ModelFileError(f"{path}: its blobs are {type(blobs).__name__}, not a dict of "
                             f"layer name -> tensors")
    for layer, tensors in blobs.items():
        if not isinstance(layer, str) or not isinstance(tensors, (list, tuple)) \
                or not all(isinstance(t, torch.Tensor) for t in tensors):
            raise ModelFileError(f"{path}: blobs of layer {printable(repr(layer), 60)} are not "
                                 f"a list of tensors")


def read(path, device="cpu", limits: Limits | None = None) -> dict:
    """The payload dict of a .pth, read with ``weights_only=True`` (no code runs), or of a
    safetensors model file (no unpickling at all), checked by `check_payload` (every size
    against `limits`, default `psp_torch.limits.DEFAULT`).

    A file that is neither (a caffemodel, an HDF5 file, a prototxt, an image) is recognised
    from its first bytes and refused with what it is and what to do."""
    check_device(device)                     # a missing GPU is no unreadable file
    path = Path(path)
    if is_safetensors(path):
        try:
            payload = decode(path, device)
        except ValueError as exc:
            raise ModelFileError(str(exc)) from None
        return check_payload(payload, path, limits)
    why = not_a_model_file(path)
    if why:
        raise ModelFileError(f"{path}: {why}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as exc:
        raise ModelFileError(f"{path}: refused: it holds Python objects other than tensors and "
                             f"plain data, which this project never writes and never unpickles "
                             f"({_unpickling_refusal(exc)})") from None
    except Exception as exc:                # RecursionError included
        raise ModelFileError(f"{path}: not a readable .pth: {torch_complaint(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a psp_torch model file (expected a dict with "
                             f"format {FORMAT!r}; plain state_dicts need PSPNet(config))")
    return check_payload(payload, path, limits)


def load(path, device="cpu", compile=False, limits: Limits | None = None):
    """The ready model of a .pth in eval mode, with ``.meta``: PSPNet, or CaffeNet.

    Every size the file declares is checked against ``limits`` (`psp_torch.limits.Limits`,
    default `psp_torch.limits.DEFAULT`) before anything is built.

    ``compile=True``: its forward compiled for inference by `psp_torch.compiled.compile_model`
    (torch.compile, inductor; other rounding within the oracle bounds, the first call of each
    input size compiles; speed in bench/README.md; raises
    `psp_torch.compiled.CompileUnavailable` where torch.compile cannot run)."""
    payload = read(path, device, limits)
    kind = payload["kind"]
    meta = payload["meta"]
    if kind == "pspnet":
        model = PSPNet(PSPNetConfig.from_dict(payload["config"]), meta)
        model.load_state_dict(payload["state_dict"], strict=True)
    else:
        model = _caffenet(payload, path, limits or DEFAULT)
        model.meta = meta
    model = model.to(device).eval()
    if compile:
        compile_model(model)
    return model


def _caffenet(payload: dict, path, limits: Limits) -> CaffeNet:
    """The CaffeNet of a caffenet payload: its prototxt parsed as text (a model file's
    prototxt is never a path to open), its size counted on the meta device first."""
    net = parse_prototxt(payload["prototxt"], f"{path} (its prototxt)")
    with torch.device("meta"):
        probe = CaffeNet(net)
    n = sum(t.numel() for t in probe.state_dict().values())
    if n > limits.parameters:
        raise refuse(path, "the prototxt's parameter count", f"{n:,}", "parameters", limits)
    for layer in net.layers:
        if layer.name in payload["blobs"]:
            layer.blobs = [t.cpu().numpy() for t in payload["blobs"][layer.name]]
    model = CaffeNet(net)
    model.load_caffe_weights(net)
    return model
