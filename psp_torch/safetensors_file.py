"""The model file as safetensors: tensors in the body, everything else in the JSON header.

    python converter/convert.py pspnet101_VOC2012.caffemodel --format safetensors
    model = psp_torch.load("pspnet101_VOC2012.safetensors")

The same payload as the .pth (`psp_torch.io`), laid out so that any framework reads it
and nothing can run code (safetensors is an 8-byte header length, a JSON header, raw
tensor bytes; no pickle anywhere):

* tensors: kind ``pspnet``: the state_dict under its own keys; kind ``caffenet``: blob
  ``i`` of Caffe layer ``L`` under ``blobs/L/i``;
* ``__metadata__`` (string -> string): ``format``, ``kind``, and JSON strings
  ``config`` (pspnet), ``meta``, and ``prototxt`` (caffenet, the text itself).

Values are stored bit for bit, so a .pth -> .safetensors -> payload round trip is exact.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save

from caffe_proto.printable import printable

FORMAT = "psp_torch.safetensors/1"
SUFFIX = ".safetensors"


def is_safetensors(path) -> bool:
    """The file starts like a safetensors file (header length, then a JSON object)."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= 100_000_000


def encode(payload: dict) -> bytes:
    """The safetensors bytes of a payload dict (see `psp_torch.io`)."""
    kind = payload.get("kind")
    header = {"format": FORMAT, "kind": str(kind),
              "meta": json.dumps(payload.get("meta") or {})}
    if kind == "pspnet":
        tensors = {k: v.detach().cpu().contiguous() for k, v in payload["state_dict"].items()}
        header["config"] = json.dumps(payload["config"])
    elif kind == "caffenet":
        tensors = {f"blobs/{layer}/{i}": t.detach().cpu().contiguous()
                   for layer, blobs in payload["blobs"].items() for i, t in enumerate(blobs)}
        header["prototxt"] = payload["prototxt"]
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return save(tensors, header)


def _json(header: dict, key: str, default, bad: str):
    """The JSON value of header entry `key` (ValueError `bad`: naming the entry otherwise)."""
    text = header.get(key, default)
    if text is None:
        raise KeyError(key)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{bad}: its {key} is not JSON ({printable(str(exc), 80)})") from None
    except RecursionError:
        raise ValueError(f"{bad}: its {key} is JSON nested deeper than Python reads") from None


def decode(path, device="cpu") -> dict:
    """The payload dict of a safetensors model file (ValueError naming the file if not one)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, FileNotFoundError):
        raise
    except Exception as exc:
        raise ValueError(f"{path}: not a readable safetensors file: "
                         f"{printable((str(exc).splitlines() or [type(exc).__name__])[0], 160)}"
                         ) from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: a safetensors file, but not a psp_torch model file (its "
                         f"header has no format {FORMAT!r}; plain state_dicts need "
                         f"PSPNet(config))")
    kind = header.get("kind")
    bad = f"{path}: bad psp_torch safetensors header"
    try:
        payload = {"format": FORMAT, "kind": kind, "meta": _json(header, "meta", "{}", bad)}
        if kind == "pspnet":
            payload["config"] = _json(header, "config", None, bad)
            payload["state_dict"] = tensors
        elif kind == "caffenet":
            payload["prototxt"] = header["prototxt"]
            blobs: dict[str, list] = {}
            for key in sorted(tensors, key=lambda k: (k.rsplit("/", 1)[0],
                                                      int(k.rsplit("/", 1)[1]))):
                layer = key[len("blobs/"):].rsplit("/", 1)[0]
                blobs.setdefault(layer, []).append(tensors[key])
            payload["blobs"] = blobs
        else:
            raise ValueError(f"unknown model kind {printable(repr(kind), 40)}")
    except KeyError as exc:
        raise ValueError(f"{bad}: no {exc}") from None
    except (ValueError, IndexError) as exc:
        if str(exc).startswith(bad):
            raise
        raise ValueError(f"{bad}: {printable(str(exc).splitlines()[0] if str(exc) else exc, 160)}"
                         ) from None
    return payload
