"""`PSPNet`: the clean, fine-tunable model with the Caffe release's exact arithmetic.

Structure (names as in the deploy prototxts, state_dict keys in `psp_torch.caffe.names`):

* stem: conv1_1_3x3_s2 (s2) -> conv1_2_3x3 -> conv1_3_3x3, each + BN + ReLU, then
  pool1_3x3_s2: MAX 3x3 s2 p1 with Caffe's ceil output size (473 -> 237 -> 119).
* four bottleneck stages conv2..conv5 (1x1 reduce, 3x3, 1x1 increase, projection on
  the first block; ``out = relu(shortcut + increase)``). Stage 3 has the stride 2, on
  conv3_1_1x1_reduce (ADE20K) or on conv3_1_3x3 (VOC, Cityscapes), and on
  conv3_1_1x1_proj; stages 4 and 5 are dilated 2 and 4 (pad = dilation): output
  stride 8, feature side ``(H - 1) // 8 + 1`` (60 at 473, 90 at 713).
* pyramid pooling on conv5_3, bins 1, 2, 3, 6: AVE pooling with the fixed kernel
  (= stride) ``feature_size // bin`` of the training crop, Caffe ceil arithmetic and
  divisor, 1x1 conv + BN + ReLU, Caffe Interp (corner-aligned bilinear) back to the
  stage-5 size. At the crop size this is the prototxt exactly (kernels 60/30/20/10 at
  473, 90/45/30/15 at 713). At other sizes the kernels stay fixed (as the network
  was trained) and Caffe's pooling arithmetic decides the grid; the result is
  interpolated to the actual stage-5 size (the prototxt's fixed Interp height/width
  would not fit there).
* concat conv5_3, pool6, pool3, pool2, pool1 (that order); conv5_4 3x3 + BN + ReLU,
  dropout 0.1 (identity in eval), conv6 1x1 with bias -> raw class scores.
* upsampling: Caffe Interp from the stage-5 map to the input size. For inputs of
  side 8k+1 (473, 713: every crop the evaluation feeds) this is exactly Caffe's
  ``zoom_factor: 8`` (same output size, same source coordinates). For other sizes
  Caffe would return ``(feat - 1) * 8 + 1`` pixels; here the output always has the
  input's size (corner-aligned Interp to (H, W)).
* aux head (training only, when the config has one): conv4_24 3x3 (pad 1) + BN +
  ReLU + dropout 0.1 + conv6_1 1x1 with bias, on the block ``config.aux_after`` names
  (default: the last stage-4 block, as the release).

The structure is written once, in the blocks: each one's forward, and next to it its
``caffe_layers`` (the Caffe layers it is, from which `psp_torch.caffe` derives the layer
list, the names <-> state_dict keys, the deploy prototxt and reading a config off a
Caffe net). ``forward(x, blobs)`` with a dict records every top under its
deploy-prototxt name as it goes (`PSPNet.forward_blobs`), and the same forward, shape
arithmetic included (`psp_torch.layers.pooling`, `psp_torch.layers.interp`: symbolic
sizes), is what torch.export, torch.compile and the ONNX exporter trace.

BN is `psp_torch.pspnet_bn.BatchNorm2d` (an `nn.BatchNorm2d`) with the file's eps
(default 1e-5): in eval mode it computes Caffe's frozen BN,
``slope * (x - mean) / sqrt(var + eps) + bias``; in train mode the fork's TRAIN BN
(batch statistics, biased moving average with momentum 0.95), or the stored
statistics when frozen (`pspnet_caffe.train.bn_statistics.freeze_bn`).

The paper's experiments are config fields: ``bins`` (``()`` = the dilated-FCN
baseline: conv5_4 directly on conv5_3), ``pool`` ("ave" | "max"), ``reduction``
(the 1x1 dimension reduction; without it the pooled maps are upsampled and
concatenated as they are), ``aux_width`` (0 = no aux head), ``aux_after`` (where it
reads), ``blocks`` (depth).
"""
from __future__ import annotations

import torch
from torch import nn

from .pspnet_bn import BatchNorm2d
from .config import PSPNetConfig, preset_config
from .fuse import fuse as fused_copy
from .layers.interp import interp
from .layers.pooling import pool2d
from .metadata import preset_meta


def _record(blobs: dict | None, name: str, top: torch.Tensor) -> torch.Tensor:
    """`top`, kept under its Caffe blob name when a blob dict is given."""
    if blobs is not None:
        blobs[name] = top
    return top


def _conv(cin, cout, k, stride=1, dilation=1, bias=False):
    pad = dilation * (k - 1) // 2
    return nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=bias)


# Each block below declares its Caffe layers next to its forward: ``caffe_layers(net, bottom,
# ...)`` names them and hands `net` (a collector the Caffe side passes in:
# `psp_torch.caffe.structure`) the modules that compute them; the collector reads every
# number (widths, kernels, strides, pads, dilations, bias) off those modules and names the
# in-place layers (``<top>/bn``, ``/relu``, ``/dropout``). The layer list, the names
# <-> state_dict keys, the deploy prototxt and reading a config off a Caffe net are derived
# from it there; this module imports nothing of the Caffe side.

class Stem(nn.Module):
    """conv1_1_3x3_s2, conv1_2_3x3, conv1_3_3x3 (+BN+ReLU), then pool1_3x3_s2 (MAX 3/2/1, ceil)."""

    CONVS = ("conv1_1_3x3_s2", "conv1_2_3x3", "conv1_3_3x3")
    POOL = "pool1_3x3_s2"
    POOLING = ("max", 3, 2, 1)          # method, kernel, stride, pad

    def __init__(self, widths, eps):
        super().__init__()
        w1, w2, w3 = widths
        self.conv1, self.bn1 = _conv(3, w1, 3, stride=2), BatchNorm2d(w1, eps=eps)
        self.conv2, self.bn2 = _conv(w1, w2, 3), BatchNorm2d(w2, eps=eps)
        self.conv3, self.bn3 = _conv(w2, w3, 3), BatchNorm2d(w3, eps=eps)
        self.relu = nn.ReLU(inplace=True)

    def _layers(self):
        return zip(self.CONVS, (self.conv1, self.conv2, self.conv3), (self.bn1, self.bn2, self.bn3))

    def forward(self, x, blobs=None):
        for name, conv, bn in self._layers():
            x = _record(blobs, name, self.relu(bn(conv(x))))
        method, k, s, p = self.POOLING
        return _record(blobs, self.POOL, pool2d(x, method, (k, k), (s, s), (p, p)))

    def caffe_layers(self, net, bottom):
        for name, conv, bn in self._layers():
            bottom = net.conv_bn(name, bottom, conv, bn)
        return net.pool(self.POOL, bottom, *self.POOLING)


class Bottleneck(nn.Module):
    """convS_I_1x1_reduce -> convS_I_3x3 -> convS_I_1x1_increase, + shortcut, ReLU.

    ``reduce_stride``/``conv_stride``: where the block's stride sits (release-specific).
    The block's layers and tops are named after the block (``name``: convS_I).
    """

    PARTS = ("1x1_reduce", "3x3", "1x1_increase")
    PROJECTION = "1x1_proj"

    def __init__(self, cin, mid, cout, *, reduce_stride=1, conv_stride=1, dilation=1,
                 project=False, eps=1e-5):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, mid, 1, stride=reduce_stride), BatchNorm2d(mid, eps=eps)
        self.conv2 = _conv(mid, mid, 3, stride=conv_stride, dilation=dilation)
        self.bn2 = BatchNorm2d(mid, eps=eps)
        self.conv3, self.bn3 = _conv(mid, cout, 1), BatchNorm2d(cout, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if project:
            self.downsample = nn.Sequential(_conv(cin, cout, 1, stride=reduce_stride * conv_stride),
                                            BatchNorm2d(cout, eps=eps))

    def forward(self, x, blobs=None, name=None):
        reduce, conv, increase = (f"{name}_{part}" for part in self.PARTS)
        y = _record(blobs, reduce, self.relu(self.bn1(self.conv1(x))))
        y = _record(blobs, conv, self.relu(self.bn2(self.conv2(y))))
        y = _record(blobs, increase, self.bn3(self.conv3(y)))
        if self.downsample is None:
            shortcut = x
        else:
            shortcut = _record(blobs, f"{name}_{self.PROJECTION}", self.downsample(x))
        return _record(blobs, name, self.relu(shortcut + y))

    def caffe_layers(self, net, bottom, name):
        reduce, conv, increase = (f"{name}_{part}" for part in self.PARTS)
        y = net.conv_bn(reduce, bottom, self.conv1, self.bn1)
        y = net.conv_bn(conv, y, self.conv2, self.bn2)
        y = net.conv_bn(increase, y, self.conv3, self.bn3, relu=False)
        shortcut = bottom
        if self.downsample is not None:
            conv, bn = self.downsample
            shortcut = net.conv_bn(f"{name}_{self.PROJECTION}", bottom, conv, bn, relu=False)
        return net.relu(net.eltwise_sum(name, (shortcut, y)))


class PyramidStage(nn.Module):
    """conv5_3_pool{b}: AVE (or MAX) pool (fixed kernel = stride) -> 1x1 conv -> BN -> ReLU.

    Without dimension reduction (``cout`` None) the pooled map is the stage's output.
    """

    CONV = "_conv"                      # the reduction's name: the level's + this

    def __init__(self, cin, cout, kernel, eps, pool="ave"):
        super().__init__()
        self.kernel, self.pool = kernel, pool
        if cout is not None:
            self.conv, self.bn = _conv(cin, cout, 1), BatchNorm2d(cout, eps=eps)
            self.relu = nn.ReLU(inplace=True)
        else:
            self.conv = None

    def forward(self, x, blobs=None, name=None):
        """``name``: the stage's Caffe name (conv5_3_pool{bin}), for the recorded tops."""
        k = (self.kernel, self.kernel)
        y = _record(blobs, name, pool2d(x, self.pool, k, k, (0, 0)))
        if self.conv is None:
            return y
        return _record(blobs, f"{name}{self.CONV}", self.relu(self.bn(self.conv(y))))

    def caffe_layers(self, net, bottom, name):
        y = net.pool(name, bottom, self.pool, self.kernel, self.kernel, 0)
        if self.conv is None:
            return y
        return net.conv_bn(f"{name}{self.CONV}", y, self.conv, self.bn)


class PyramidPooling(nn.Module):
    """The PPM: stages in bin order; output concat(x, pool6, pool3, pool2, pool1).

    No stages (no bins): x itself (the dilated-FCN baseline).
    """

    PREFIX = "conv5_3_pool"             # level b: conv5_3_pool{b}, its _conv and _interp
    INTERP = "_interp"
    CONCAT = "conv5_3_concat"

    def __init__(self, cin, width, bins, kernels, eps, pool="ave"):
        super().__init__()
        self.bins = tuple(bins)
        self.stages = nn.ModuleList(PyramidStage(cin, width, k, eps, pool) for k in kernels)

    @classmethod
    def level(cls, bin_: int) -> str:
        """The Caffe name of pyramid level `bin_`'s pooling (its conv and Interp add suffixes)."""
        return f"{cls.PREFIX}{bin_}"

    def _levels(self):
        return [(self.level(b), stage) for b, stage in zip(self.bins, self.stages)]

    def forward(self, x, blobs=None):
        if not self.stages:
            return _record(blobs, self.CONCAT, x)
        size = x.shape[-2:]
        pooled = [_record(blobs, f"{name}{self.INTERP}", interp(stage(x, blobs, name), size))
                  for name, stage in self._levels()]
        return _record(blobs, self.CONCAT, torch.cat([x] + pooled[::-1], dim=1))

    def caffe_layers(self, net, bottom):
        if not self.stages:
            return bottom
        pooled = [net.interp(f"{name}{self.INTERP}", stage.caffe_layers(net, bottom, name),
                             like=bottom)
                  for name, stage in self._levels()]
        return net.concat(self.CONCAT, [bottom] + pooled[::-1])


class Head(nn.Module):
    """conv5_4 (3x3) + BN + ReLU + dropout, as `head`; conv6 lives in PSPNet.classifier."""

    NAME = "conv5_4"

    def __init__(self, cin, width, dropout, eps):
        super().__init__()
        self.conv, self.bn = _conv(cin, width, 3), BatchNorm2d(width, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, blobs=None):
        return _record(blobs, self.NAME, self.dropout(self.relu(self.bn(self.conv(x)))))

    def caffe_layers(self, net, bottom):
        return net.dropout(net.conv_bn(self.NAME, bottom, self.conv, self.bn), self.dropout)


class AuxHead(nn.Module):
    """conv4_24 3x3 + conv4_24/bn + ReLU + dropout + conv6_1 (training-only branch).

    The release's names for any depth and for any block it reads (`PSPNetConfig.aux_after`).
    """

    NAME, CLASSIFIER = "conv4_24", "conv6_1"

    def __init__(self, cin, width, classes, dropout, eps):
        super().__init__()
        self.conv, self.bn = _conv(cin, width, 3), BatchNorm2d(width, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = _conv(width, classes, 1, bias=True)

    def forward(self, x):
        return self.classifier(self.dropout(self.relu(self.bn(self.conv(x)))))

    def caffe_layers(self, net, bottom):
        y = net.dropout(net.conv_bn(self.NAME, bottom, self.conv, self.bn), self.dropout)
        return net.conv(self.CLASSIFIER, y, self.classifier)


class PSPNet(nn.Module):
    """PSPNet of the Caffe release; ``model(x)`` -> (N, classes, H, W) raw scores.

    ``x``: (N, 3, H, W) float32, BGR, mean-subtracted (see `psp_torch.preprocess`).
    In train mode the result is ``{"out": ..., "aux": ...}`` ("aux" only with an aux head).
    """

    CLASSIFIER, OUTPUT = "conv6", "conv6_interp"
    OUTPUT_STRIDE = 8                   # conv6_interp is Caffe's zoom_factor 8 where it fits
    # The layers the release added to the ImageNet ResNet (trained with the "new" lr
    # multipliers of `psp_torch.presets.MULTIPLIERS`): these children, all they hold.
    NEW_LAYERS = ("ppm", "head", "classifier", "aux")

    def __init__(self, config: PSPNetConfig, meta: dict | None = None):
        super().__init__()
        c = config
        self.config = c
        self.meta = dict(meta or {})
        eps = c.bn_eps
        self.stem = Stem(c.stem_widths, eps)
        cin = c.stem_widths[-1]
        for s in range(4):
            blocks = []
            for i in range(c.blocks[s]):
                first = i == 0
                stride = 2 if (s == 1 and first) else 1
                reduce_stride = stride if c.stride_on_reduce else 1
                blocks.append(Bottleneck(cin if first else c.out_widths[s], c.mid_widths[s],
                                         c.out_widths[s], reduce_stride=reduce_stride,
                                         conv_stride=stride // reduce_stride,
                                         dilation=c.dilations[s], project=first, eps=eps))
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
            cin = c.out_widths[s]
        self.ppm = PyramidPooling(cin, c.ppm_width if c.reduction else None, c.bins,
                                  c.pool_kernels, eps, c.pool)
        self.head = Head(c.concat_width, c.head_width, c.dropout, eps)
        self.classifier = _conv(c.head_width, c.num_classes, 1, bias=True)
        self.aux = (AuxHead(c.aux_input_width, c.aux_width, c.num_classes, c.dropout, eps)
                    if c.aux else None)
        self._block_names = c.block_names()
        self._aux_block = c.aux_block       # the block whose output the aux head reads

    def named_blocks(self):
        """(name, Bottleneck) of every residual block in order: conv2_1 ... conv5_3."""
        for s, names in enumerate(self._block_names):
            yield from zip(names, getattr(self, f"layer{s + 1}"))

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, blobs: dict | None = None):
        """Raw scores (N, classes, H, W); with ``blobs`` (a dict) every deploy-net top is
        also kept there under its Caffe name (`forward_blobs`)."""
        size = x.shape[-2:]
        x = self.stem(x, blobs)
        tap = None
        for name, block in self.named_blocks():
            x = block(x, blobs, name)
            if name == self._aux_block:
                tap = x                 # what the aux head reads
        x = self.head(self.ppm(x, blobs), blobs)
        x = _record(blobs, self.CLASSIFIER, self.classifier(x))
        out = _record(blobs, self.OUTPUT, interp(x, size))
        if not self.training:
            return out
        if self.aux is None:
            return {"out": out}
        return {"out": out, "aux": interp(self.aux(tap), size)}

    def caffe_layers(self, net, bottom, *, aux: bool = False):
        """The deploy net's layers (``aux``: the aux head's appended, last), into `net`."""
        data = bottom
        x = self.stem.caffe_layers(net, bottom)
        for name, block in self.named_blocks():
            x = block.caffe_layers(net, x, name)
        x = self.head.caffe_layers(net, self.ppm.caffe_layers(net, x))
        net.conv(self.CLASSIFIER, x, self.classifier)
        net.interp(self.OUTPUT, self.CLASSIFIER, like=data, zoom=self.OUTPUT_STRIDE)
        if aux:
            with net.aux_head():
                self.aux.caffe_layers(net, self._aux_block)

    def forward_blobs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every top blob of the deploy net under its Caffe name, for parity checks: the
        forward itself, recording (in train mode it also runs the aux head).

        In-place chains hold their final value, as in Caffe (conv -> BN -> ReLU:
        after the ReLU; 1x1_increase and 1x1_proj: after their BN).
        """
        blobs: dict[str, torch.Tensor] = {}
        self.forward(x, blobs)
        return blobs

    def fuse(self) -> "PSPNet":
        """A copy for inference with every BN folded into its convolution.

        Not bit-identical to the faithful fp32 forward (one rounding instead of two):
        never applied implicitly; bench/bench_forward.py prints its deviation.
        """
        return fused_copy(self)


def parameter_role(name: str, module: nn.Module) -> str:
    """The `psp_torch.presets.MULTIPLIERS` role of a PSPNet parameter (its state_dict name,
    the module holding it): "new" under `PSPNet.NEW_LAYERS`, else "backbone"; "_bn" for BN
    slopes and biases, "_bias" for convolution biases."""
    role = "new" if name.split(".", 1)[0] in PSPNet.NEW_LAYERS else "backbone"
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return f"{role}_bn"
    return f"{role}_bias" if name.rsplit(".", 1)[-1] == "bias" else role


def _factory(name: str, aux: bool) -> PSPNet:
    return PSPNet(preset_config(name, aux=aux), preset_meta(name))


def pspnet50_ade20k(aux: bool = False) -> PSPNet:
    """ResNet-50 PSPNet for ADE20K (150 classes, crop 473, stage-3 stride on 1x1 reduce); random init."""
    return _factory("pspnet50_ade20k", aux)


def pspnet101_voc2012(aux: bool = False) -> PSPNet:
    """ResNet-101 PSPNet for PASCAL VOC 2012 (21 classes, crop 473); random init."""
    return _factory("pspnet101_voc2012", aux)


def pspnet101_cityscapes(aux: bool = False) -> PSPNet:
    """ResNet-101 PSPNet for Cityscapes (19 classes, crop 713); random init."""
    return _factory("pspnet101_cityscapes", aux)
