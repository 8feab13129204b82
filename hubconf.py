"""torch.hub entry points: the three released PSPNets and `load` for any model file.

    import torch
    model = torch.hub.load("OWNER/REPO", "pspnet101_voc2012", weights="pspnet101_VOC2012.pth")
    model = torch.hub.load("/path/to/checkout", "pspnet50_ade20k", source="local",
                           weights="https://host/pspnet50_ADE20K.safetensors")
    model = torch.hub.load("/path/to/checkout", "load", "any_converted_model.pth", source="local")

``weights``: a model file written by converter/convert.py (.pth or .safetensors), a path
or an http(s) URL (downloaded once into torch.hub's cache, ``<hub dir>/checkpoints``);
without it the network is randomly initialised. Files are read without running code
(`psp_torch.load`). The model comes in eval mode on ``device`` with its ``.meta``.
"""
from __future__ import annotations

from pathlib import Path as _Path
from urllib.parse import urlparse as _urlparse

dependencies = ["torch", "numpy", "google.protobuf", "tqdm"]   # what `import psp_torch` needs


def _local(weights) -> _Path:
    """A path for a path or URL (a URL is downloaded once into the hub cache)."""
    text = str(weights)
    if _urlparse(text).scheme in ("http", "https"):
        import torch.hub
        name = _Path(_urlparse(text).path).name or "weights.pth"
        target = _Path(torch.hub.get_dir()) / "checkpoints" / name
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(text, str(target), progress=True)
        return target
    return _Path(text)


def load(weights, device: str = "cpu"):
    """Any model file of this project (PSPNet or a generic CaffeNet), path or URL."""
    import psp_torch
    return psp_torch.load(_local(weights), device=device)


def _released(name: str, weights, aux: bool, device: str):
    import psp_torch
    from psp_torch.config import match_preset
    if weights is None:
        return getattr(psp_torch, name)(aux=aux).to(device).eval()
    model = load(weights, device)
    preset = match_preset(model.config) if hasattr(model, "config") else None
    if preset is None or preset.name != name:
        found = preset.name if preset is not None else (model.meta or {}).get("name")
        raise ValueError(f"{weights}: holds {found or 'another network'}, not {name} "
                         f"(use the matching entry point, or 'load')")
    return model


def pspnet50_ade20k(weights=None, aux: bool = False, device: str = "cpu"):
    """PSPNet-50, ADE20K (150 classes, crop 473); weights: .pth/.safetensors path or URL."""
    return _released("pspnet50_ade20k", weights, aux, device)


def pspnet101_voc2012(weights=None, aux: bool = False, device: str = "cpu"):
    """PSPNet-101, PASCAL VOC 2012 (21 classes, crop 473); weights: path or URL."""
    return _released("pspnet101_voc2012", weights, aux, device)


def pspnet101_cityscapes(weights=None, aux: bool = False, device: str = "cpu"):
    """PSPNet-101, Cityscapes (19 classes, crop 713); weights: path or URL."""
    return _released("pspnet101_cityscapes", weights, aux, device)
