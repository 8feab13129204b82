"""The stable mapping between Caffe layer names and `PSPNet` state_dict keys.

Used by the converter (caffemodel -> .pth) and the exporter (.pth -> caffemodel).
Derived from `psp_torch.caffe.structure.caffe_layers` (every weighted layer there names
the module holding its weights), so the mapping and the deploy prototxt cannot disagree.
The mapping (stage s = 2..5 is ``layer{s-1}``, block i = 1.. is index ``i-1``):

    conv1_1_3x3_s2 (+/bn)          stem.conv1 / stem.bn1
    conv1_2_3x3, conv1_3_3x3       stem.conv2 / stem.bn2, stem.conv3 / stem.bn3
    conv{s}_{i}_1x1_reduce         layer{s-1}.{i-1}.conv1 / .bn1
    conv{s}_{i}_3x3                layer{s-1}.{i-1}.conv2 / .bn2
    conv{s}_{i}_1x1_increase       layer{s-1}.{i-1}.conv3 / .bn3
    conv{s}_1_1x1_proj             layer{s-1}.0.downsample.0 / .downsample.1
    conv5_3_pool{b}_conv           ppm.stages.{j}.conv / .bn   (j = index of b in 1, 2, 3, 6)
    conv5_4                        head.conv / head.bn
    conv6                          classifier (weight, bias)
    conv4_24                       aux.conv / aux.bn            (training only)
    conv6_1                        aux.classifier (weight, bias)

A Caffe conv layer's blobs are [weight (out, in/group, kh, kw)] plus [bias (out)]
when it has one; a ``/bn`` layer of the fork holds four blobs shaped 1xCx1x1:
slope, bias, mean, variance = ``weight, bias, running_mean, running_var`` of
`nn.BatchNorm2d` (``num_batches_tracked`` has no Caffe counterpart).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import PSPNetConfig
from .structure import caffe_layers

CONV = "conv"            # blobs: weight
CONV_BIAS = "conv_bias"  # blobs: weight, bias
BN = "bn"                # blobs: slope, bias, mean, variance

_SUFFIXES = {
    CONV: ("weight",),
    CONV_BIAS: ("weight", "bias"),
    BN: ("weight", "bias", "running_mean", "running_var"),
}


@dataclass(frozen=True)
class LayerKeys:
    """One Caffe layer with weights and the module that holds them."""
    caffe: str        # Caffe layer name
    module: str       # dotted module path in PSPNet
    kind: str         # CONV, CONV_BIAS or BN
    aux: bool = False  # part of the training-only auxiliary head

    @property
    def keys(self) -> tuple[str, ...]:
        """state_dict keys in Caffe blob order."""
        return tuple(f"{self.module}.{s}" for s in _SUFFIXES[self.kind])


def _kind(layer) -> str:
    if layer.type == "BN":
        return BN
    return CONV_BIAS if layer.params["bias"] else CONV


def layer_keys(config: PSPNetConfig, aux: bool | None = None) -> list[LayerKeys]:
    """Every weighted Caffe layer of the config in deploy-prototxt order (aux head last)."""
    return [LayerKeys(layer.name, layer.module, _kind(layer), layer.aux)
            for layer in caffe_layers(config, aux=aux) if layer.module is not None]


def caffe_to_state_dict_keys(config: PSPNetConfig) -> dict[str, tuple[str, ...]]:
    """{Caffe layer name: state_dict keys in blob order}."""
    return {lk.caffe: lk.keys for lk in layer_keys(config)}


def state_dict_key_to_caffe(config: PSPNetConfig) -> dict[str, tuple[str, int]]:
    """{state_dict key: (Caffe layer name, blob index)}."""
    return {key: (lk.caffe, i) for lk in layer_keys(config) for i, key in enumerate(lk.keys)}
