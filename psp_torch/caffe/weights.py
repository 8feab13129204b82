"""Caffe blobs <-> `PSPNet` state_dict, by Caffe layer name (as Caffe copies weights).

`state_dict_from_caffe` checks everything before anything is copied: a missing
layer, a wrong blob count, or a blob whose shape does not fit its parameter is an
error naming the layer and both shapes (no partial conversion). Shapes are taken
from a model built on the ``meta`` device, so no memory is spent on a throwaway model.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from caffe_proto import load_weights
from caffe_proto.printable import printable

from ..config import PSPNetConfig
from ..pspnet import PSPNet
from .names import BN, layer_keys

CONV_TYPES = {"Convolution", "ConvolutionData", "HoleConvolutionData"}
BN_TYPES = {"BN", "BNData"}
TRAINING_TYPES = {"ImageSegData", "ImageData", "Data", "HDF5Data", "SoftmaxWithLoss",
                  "SegAccuracy", "Accuracy", "Silence", "MemoryData", "DummyData"}


class WeightMismatch(ValueError):
    """Weights that do not fit the network (message names the layer and both shapes)."""


@dataclass
class ConversionReport:
    """What a PSPNet took from a Caffe net: layers and blobs copied, layers left out
    (CaffeNet's own by-name copy reports with `psp_torch.caffe.graph.WeightReport`)."""
    matched: list = field(default_factory=list)     # Caffe layers copied
    blobs: int = 0                                  # blobs copied
    parameters: int = 0                             # values copied
    ignored: list = field(default_factory=list)     # (layer name, type, reason)

    def lines(self) -> list[str]:
        out = [f"layers matched: {len(self.matched)}",
               f"blobs copied: {self.blobs} ({self.parameters:,} values)"]
        if self.ignored:
            out.append(f"layers ignored: {len(self.ignored)}")
            for name, type_, reason in self.ignored:
                out.append(f"  {printable(name)} ({printable(type_)}): {reason}")
        return out


def weights_net(src):
    """A `caffe_proto.Net` with blobs from a Net, a .caffemodel or a .caffemodel.h5 path."""
    if hasattr(src, "layers"):
        return src
    return load_weights(src)


def expected_shapes(config: PSPNetConfig) -> dict[str, tuple]:
    """state_dict key -> shape, without allocating the model."""
    with torch.device("meta"):
        model = PSPNet(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _fit(blob: np.ndarray, target: tuple, layer: str, index: int, key: str) -> np.ndarray:
    """The blob in the parameter's shape; 1-D parameters accept Caffe's 1xCx1x1 and legacy 4-D."""
    if tuple(blob.shape) == target:
        return blob
    if len(target) == 1 and blob.size == target[0] and sum(d != 1 for d in blob.shape) <= 1:
        return blob.reshape(target)
    raise WeightMismatch(f"layer {layer!r} blob {index}: shape {tuple(blob.shape)} does not fit "
                         f"{key} of shape {target}")


def state_dict_from_caffe(config: PSPNetConfig, wnet, *, source: str | None = None):
    """(state_dict, ConversionReport) for `config` from the blobs of `wnet`, matched by layer name.

    The tensors share memory with the Net's numpy arrays where the layout allows.
    """
    source = source or getattr(wnet, "source", "<weights>")
    shapes = expected_shapes(config)
    layers = wnet.by_name()
    report = ConversionReport()
    state = {}
    wanted = layer_keys(config)
    for lk in wanted:
        layer = layers.get(lk.caffe)
        if layer is None or not layer.blobs:
            why = "missing" if layer is None else "has no blobs"
            raise WeightMismatch(f"{source}: layer {lk.caffe!r} ({lk.module}) {why}; "
                                 f"the network needs its weights")
        allowed = BN_TYPES if lk.kind == BN else CONV_TYPES
        if layer.type not in allowed:
            raise WeightMismatch(f"{source}: layer {lk.caffe!r} has type '{printable(layer.type)}', "
                                 f"expected one of {sorted(allowed)}")
        if len(layer.blobs) != len(lk.keys):
            raise WeightMismatch(f"{source}: layer {lk.caffe!r} has {len(layer.blobs)} blobs, "
                                 f"{lk.module} needs {len(lk.keys)}")
        for i, (key, blob) in enumerate(zip(lk.keys, layer.blobs)):
            try:
                arr = _fit(np.asarray(blob, dtype=np.float32), shapes[key], lk.caffe, i, key)
            except WeightMismatch as exc:
                raise WeightMismatch(f"{source}: {exc}") from None
            if not arr.flags.writeable:
                arr = arr.copy()
            state[key] = torch.from_numpy(np.ascontiguousarray(arr))
            report.blobs += 1
            report.parameters += int(arr.size)
        report.matched.append(lk.caffe)
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
    missing = set(shapes) - set(state)
    if missing:  # a mapping defect, not a user error
        raise AssertionError(f"state_dict keys without a Caffe source: {sorted(missing)[:5]}")
    used = {lk.caffe for lk in wanted}
    for layer in wnet.layers:
        if layer.name in used:
            continue
        if layer.type in TRAINING_TYPES:
            report.ignored.append((layer.name, layer.type, "training-only layer"))
        elif layer.blobs:
            report.ignored.append((layer.name, layer.type,
                                   f"{len(layer.blobs)} blobs not used by this network"))
    return state, report


def load_caffe_weights(model, wnet) -> ConversionReport:
    """Copy Caffe weights into `model` (a PSPNet) by layer name; all-or-nothing."""
    state, report = state_dict_from_caffe(model.config, weights_net(wnet))
    model.load_state_dict(state, strict=True)
    return report


def caffe_blobs(config: PSPNetConfig, state_dict) -> dict[str, list[np.ndarray]]:
    """{Caffe layer name: blobs in Caffe order and shape} from a PSPNet state_dict.

    Conv weight (out, in, kh, kw), conv bias (out,), BN slope/bias/mean/variance 1xCx1x1.
    """
    out = {}
    for lk in layer_keys(config):
        blobs = []
        for key in lk.keys:
            if key not in state_dict:
                raise WeightMismatch(f"state_dict has no {key!r} (Caffe layer {lk.caffe!r})")
            arr = state_dict[key].detach().cpu().to(torch.float32).contiguous().numpy()
            if lk.kind == BN:
                arr = arr.reshape(1, -1, 1, 1)
            blobs.append(arr)
        out[lk.caffe] = blobs
    return out
