"""torch.hub entry points: the three released PSPNets and `load` for any model file.

    import torch
    model = torch.hub.load("OWNER/REPO", "pspnet101_voc2012", weights="pspnet101_VOC2012.pth")
    model = torch.hub.load("/path/to/checkout", "pspnet50_ade20k", source="local",
                           weights="https://host/pspnet50_ADE20K.safetensors")
    model = torch.hub.load("/path/to/checkout", "load", "any_converted_model.pth", source="local")

``weights``: a model file written by converter/convert.py (.pth or .safetensors), a path
or an http(s) / file URL, downloaded once into torch.hub's cache under a folder named by a
hash of the whole URL (``<hub dir>/checkpoints/psp_torch/<url hash>/<file name>``: another
URL with the same file name is another download). ``sha256="..."`` (a full hash or a
prefix), or ``check_hash=True`` with torch.hub's convention of the hash prefix in the file
name (``name-<sha256 prefix>.pth``), checks the download, and the cached copy on every
later use; a file that does not match is refused and not kept. Without ``weights`` the
network is randomly initialised. Files are read without running code (`psp_torch.load`,
every size checked against ``limits``: `psp_torch.limits.Limits`). The model comes in eval
mode on ``device`` with its ``.meta``.
"""
from __future__ import annotations

from pathlib import Path as _Path
from urllib.parse import urlparse as _urlparse

dependencies = ["torch", "numpy", "google.protobuf", "tqdm"]   # what `import psp_torch` needs

_URL_SCHEMES = ("http", "https", "file")


def _expected_hash(url: str, sha256: str | None, check_hash: bool) -> str | None:
    """The sha256 (or prefix) a download must have: given, or from the file name."""
    import re

    import torch.hub
    if sha256 is not None:
        if not re.fullmatch(r"[0-9a-f]{1,64}", sha256.lower()):
            raise ValueError(f"sha256 {sha256!r} is not a hexadecimal sha256 (or prefix)")
        return sha256.lower()
    if check_hash:
        found = re.search(torch.hub.HASH_REGEX, _Path(_urlparse(url).path).name)
        if not found or not found.group(1):
            raise ValueError(f"{url}: check_hash needs the sha256 prefix in the file name "
                             f"(name-<hash prefix>.pth, torch.hub's convention)")
        return found.group(1)
    return None


def _local(weights, sha256: str | None = None, check_hash: bool = False) -> _Path:
    """A path for a path or URL (a URL is downloaded once into the hub cache, keyed by the
    whole URL, and checked against its expected sha256 when there is one)."""
    text = str(weights)
    if _urlparse(text).scheme not in _URL_SCHEMES:
        return _Path(text)
    import hashlib
    import os
    import tempfile

    import torch.hub
    from caffe_proto.printable import printable
    from psp_torch.digest import file_sha256

    expected = _expected_hash(text, sha256, check_hash)
    name = _Path(_urlparse(text).path).name or "weights.pth"
    key = hashlib.sha256(text.encode()).hexdigest()[:32]
    target = _Path(torch.hub.get_dir()) / "checkpoints" / "psp_torch" / key / name
    if target.is_file():
        if expected and not file_sha256(target).startswith(expected):
            raise ValueError(f"{target}: the cached download of {printable(text)} does not "
                             f"match its sha256 {expected} (changed since it was fetched); "
                             f"delete it to download again")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        torch.hub.download_url_to_file(text, tmp, progress=True)
        if expected:
            got = file_sha256(tmp)
            if not got.startswith(expected):
                raise ValueError(f"{printable(text)}: the download's sha256 {got[:16]}... does "
                                 f"not match the expected {expected}; not kept")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def load(weights, device: str = "cpu", *, sha256: str | None = None, check_hash: bool = False,
         limits=None):
    """Any model file of this project (PSPNet or a generic CaffeNet), path or URL."""
    import psp_torch
    return psp_torch.load(_local(weights, sha256, check_hash), device=device, limits=limits)


def _released(name: str, weights, aux: bool, device: str, **checks):
    import psp_torch
    from caffe_proto.printable import printable
    from psp_torch.config import match_preset
    if weights is None:
        return getattr(psp_torch, name)(aux=aux).to(device).eval()
    model = load(weights, device, **checks)
    preset = match_preset(model.config) if hasattr(model, "config") else None
    if preset is None or preset.name != name:
        found = preset.name if preset is not None else (model.meta or {}).get("name")
        raise ValueError(f"{printable(weights)}: holds {printable(found or 'another network')}"
                         f", not {name} (use the matching entry point, or 'load')")
    return model


def pspnet50_ade20k(weights=None, aux: bool = False, device: str = "cpu", **checks):
    """PSPNet-50, ADE20K (150 classes, crop 473); weights: .pth/.safetensors path or URL
    (``sha256=`` / ``check_hash=True`` check a download, ``limits=`` raise size limits)."""
    return _released("pspnet50_ade20k", weights, aux, device, **checks)


def pspnet101_voc2012(weights=None, aux: bool = False, device: str = "cpu", **checks):
    """PSPNet-101, PASCAL VOC 2012 (21 classes, crop 473); weights: path or URL."""
    return _released("pspnet101_voc2012", weights, aux, device, **checks)


def pspnet101_cityscapes(weights=None, aux: bool = False, device: str = "cpu", **checks):
    """PSPNet-101, Cityscapes (19 classes, crop 713); weights: path or URL."""
    return _released("pspnet101_cityscapes", weights, aux, device, **checks)
