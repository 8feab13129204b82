"""Binary caffemodel -> `Net`.

PLACEHOLDER: whole-file protobuf parse; to be replaced by the streaming
wire-format reader over a memory map (see issue: caffe_proto).
"""
from __future__ import annotations

from google.protobuf.message import DecodeError

from . import caffe_pb2
from .errors import CaffeFormatError
from .net import PSPNET, UPSTREAM
from .prototxt import net_from_message

_FORK_TYPES = {"Interp", "BN", "BNData"}


def load_caffemodel(path):
    path = str(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        probe = caffe_pb2.PSPNetParameter.FromString(data)
    except DecodeError as exc:
        raise CaffeFormatError(f"not a caffemodel: {exc}", path=path) from exc
    fork = any(l.type in _FORK_TYPES for l in probe.layer)
    if fork:
        return net_from_message(probe, PSPNET, path)
    return net_from_message(caffe_pb2.NetParameter.FromString(data), UPSTREAM, path)
