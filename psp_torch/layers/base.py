"""What every Caffe layer module shares: shape arithmetic, blob slots, errors.

A layer module maps its bottom tensors to its top tensors (TEST phase) and
knows its output shapes from its bottom shapes without running
(``output_shapes``), so the graph can infer every blob's shape at build time
with the same arithmetic the forward uses. Learnable Caffe blobs live in
attributes named by ``BLOBS`` (blob i -> ``BLOBS[i]``), each a tensor in
Caffe's own shape, so that copying weights in and out is a plain copy.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class LayerError(ValueError):
    """A layer that cannot be built or run; the message names the layer."""


def has(param, name: str) -> bool:
    """proto2 presence of a (possibly dialect-missing) field of a message."""
    return name in param.DESCRIPTOR.fields_by_name and param.HasField(name)


def sub_param(layer, name: str):
    """The layer's ``<name>`` message (its defaults when absent or not in this dialect)."""
    p = layer.param
    if name not in p.DESCRIPTOR.fields_by_name:
        raise LayerError(f"layer {layer.name!r} ({layer.type}): its dialect has no {name}")
    return getattr(p, name)


def canonical_axis(axis: int, num_axes: int, what: str = "axis") -> int:
    """Caffe's Blob::CanonicalAxisIndex: negative counts from the end."""
    if not -num_axes <= axis < num_axes:
        raise ValueError(f"{what} {axis} out of range for a {num_axes}-axis blob")
    return axis + num_axes if axis < 0 else axis


def legacy_shape_matches(found: tuple, expected: tuple) -> bool:
    """Caffe's Blob::ShapeEquals: equal, or a legacy 4-D blob equal after padding
    the expected shape with leading 1s to 4 axes (e.g. (1, 1, 10, 60) for (10, 60))."""
    found, expected = tuple(found), tuple(expected)
    if found == expected:
        return True
    return len(found) == 4 and len(expected) <= 4 and (1,) * (4 - len(expected)) + expected == found


def channel_count(shape, what: str) -> int:
    """The size of Caffe's channel axis (1) of a bottom shape; `what` names the layer type."""
    if len(shape) < 2:
        raise ValueError(f"{what} needs a channel axis, got a blob of shape {tuple(shape)}")
    return shape[1]


def same_shape_checking_channels(bottom_shapes, channels: int) -> list[tuple]:
    """``output_shapes`` of a per-channel layer: the bottom's shape, its channels checked."""
    shape = tuple(bottom_shapes[0])
    if len(shape) < 2 or shape[1] != channels:
        raise ValueError(f"expects {channels} channels, got a blob of shape {shape}")
    return [shape]


class CaffeLayer(nn.Module):
    """Base class: ``forward(*bottoms)`` returns one tensor or a list of tops.

    ``from_layer(layer, bottom_shapes)`` builds one from a `caffe_proto.Layer`;
    ``output_shapes(bottom_shapes)`` returns one shape per top.
    """

    BLOBS: tuple[str, ...] = ()       # attribute name of Caffe blob i

    def output_shapes(self, bottom_shapes: list[tuple]) -> list[tuple]:
        raise NotImplementedError

    def blob_tensors(self) -> list[torch.Tensor]:
        return [getattr(self, n) for n in self.BLOBS if getattr(self, n, None) is not None]

    def blob_shapes(self) -> list[tuple]:
        """The Caffe shapes the layer's blobs must have, in blob order."""
        return [tuple(t.shape) for t in self.blob_tensors()]

    @torch.no_grad()
    def load_blobs(self, blobs: list[np.ndarray], where: str = "") -> None:
        """Copy Caffe blobs in (count and shape checked as Caffe's CopyTrainedLayersFrom)."""
        targets = self.blob_tensors()
        if len(blobs) != len(targets):
            raise LayerError(f"{where}incompatible number of blobs: the file has {len(blobs)}, "
                             f"the layer needs {len(targets)} {self.blob_shapes()}")
        for i, (blob, t) in enumerate(zip(blobs, targets)):
            if not legacy_shape_matches(blob.shape, t.shape):
                raise LayerError(f"{where}blob {i} ({self.BLOBS[i]}) has shape "
                                 f"{tuple(blob.shape)} in the file, the layer needs "
                                 f"{tuple(t.shape)}")
            t.copy_(torch.from_numpy(np.ascontiguousarray(blob, dtype=np.float32))
                    .reshape(t.shape))


def as_shape(shape) -> tuple[int, ...]:
    return tuple(int(d) for d in shape)
