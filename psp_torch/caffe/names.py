"""The stable mapping between Caffe layer names and `PSPNet` state_dict keys.

Used by the converter (caffemodel -> .pth) and the exporter (.pth -> caffemodel).
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

from .config import AUX_CLASSIFIER, AUX_LAYER, STEM_LAYERS, PSPNetConfig

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


def _conv_bn(caffe, conv_module, bn_module, aux=False):
    return [LayerKeys(caffe, conv_module, CONV, aux), LayerKeys(f"{caffe}/bn", bn_module, BN, aux)]


def layer_keys(config: PSPNetConfig, aux: bool | None = None) -> list[LayerKeys]:
    """Every weighted Caffe layer of the config in deploy-prototxt order (aux head last)."""
    aux = config.aux if aux is None else aux
    out = []
    for i, name in enumerate(STEM_LAYERS, 1):
        out += _conv_bn(name, f"stem.conv{i}", f"stem.bn{i}")
    for s, n in zip((2, 3, 4, 5), config.blocks):
        for i in range(1, n + 1):
            block = f"layer{s - 1}.{i - 1}"
            out += _conv_bn(f"conv{s}_{i}_1x1_reduce", f"{block}.conv1", f"{block}.bn1")
            out += _conv_bn(f"conv{s}_{i}_3x3", f"{block}.conv2", f"{block}.bn2")
            out += _conv_bn(f"conv{s}_{i}_1x1_increase", f"{block}.conv3", f"{block}.bn3")
            if i == 1:
                out += _conv_bn(f"conv{s}_1_1x1_proj", f"{block}.downsample.0",
                                f"{block}.downsample.1")
    for j, b in enumerate(config.bins if config.reduction else ()):
        out += _conv_bn(f"conv5_3_pool{b}_conv", f"ppm.stages.{j}.conv", f"ppm.stages.{j}.bn")
    out += _conv_bn("conv5_4", "head.conv", "head.bn")
    out.append(LayerKeys("conv6", "classifier", CONV_BIAS))
    if aux:
        out += _conv_bn(AUX_LAYER, "aux.conv", "aux.bn", aux=True)
        out.append(LayerKeys(AUX_CLASSIFIER, "aux.classifier", CONV_BIAS, aux=True))
    return out


def caffe_to_state_dict_keys(config: PSPNetConfig) -> dict[str, tuple[str, ...]]:
    """{Caffe layer name: state_dict keys in blob order}."""
    return {lk.caffe: lk.keys for lk in layer_keys(config)}


def state_dict_key_to_caffe(config: PSPNetConfig) -> dict[str, tuple[str, int]]:
    """{state_dict key: (Caffe layer name, blob index)}."""
    return {key: (lk.caffe, i) for lk in layer_keys(config) for i, key in enumerate(lk.keys)}
