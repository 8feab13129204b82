"""Which of the two dialects a layer (and a net) speaks.

The PSPNet fork and upstream Caffe give LayerParameter fields 143 and 144
different meanings (fork: interp_param, seg_accuracy_param; upstream:
input_param, crop_param). Nothing in the bytes says which is meant, so the
layer's type decides: a type only the fork (or the released PSPNet files)
knows is read with the fork's numbering, ``Input``/``Crop`` with upstream's,
and every other layer with the net's dialect, which is the fork's as soon as
one layer has a fork-only type.
"""
from __future__ import annotations

from . import caffe_pb2
from .net import PSPNET, UPSTREAM

# Layer types of the PSPNet fork (src/caffe/layers of hszhao/PSPNet) and of the
# released caffemodels (BNData, ConvolutionData, HoleConvolutionData) that
# upstream Caffe does not have.
FORK_TYPES = frozenset({
    "Interp", "BN", "BNData", "ConvolutionData", "HoleConvolutionData",
    "SegAccuracy", "ImageSegData", "AdaptiveBiasChannel", "BiasChannel", "DenseCRF",
    "DomainTransform", "DomainTransformForwardOnly", "MatRead", "MatWrite",
    "UniqueLabel", "SpatialProduct",
})
# Types whose parameters sit at the field numbers the fork reuses.
UPSTREAM_TYPES = frozenset({"Input", "Crop"})

LAYER_CLASSES = {PSPNET: caffe_pb2.PSPLayerParameter, UPSTREAM: caffe_pb2.LayerParameter}
NET_CLASSES = {PSPNET: caffe_pb2.PSPNetParameter, UPSTREAM: caffe_pb2.NetParameter}


def net_dialect(layer_types) -> str:
    """PSPNET when any layer has a fork-only type, else UPSTREAM."""
    return PSPNET if any(t in FORK_TYPES for t in layer_types) else UPSTREAM


def layer_dialect(layer_type: str, net_dialect_: str) -> str:
    """The dialect a layer's fields 143/144 are read in."""
    if layer_type in FORK_TYPES:
        return PSPNET
    if layer_type in UPSTREAM_TYPES:
        return UPSTREAM
    return net_dialect_


def dialect_of_param(param) -> str:
    """PSPNET or UPSTREAM from a layer message's class."""
    return PSPNET if isinstance(param, caffe_pb2.PSPLayerParameter) else UPSTREAM
