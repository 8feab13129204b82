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
  ReLU + dropout 0.1 + conv6_1 1x1 with bias, on the last stage-4 block.

BN is `psp_torch.batchnorm2d.BatchNorm2d` (an `nn.BatchNorm2d`) with the file's eps
(default 1e-5): in eval mode it computes Caffe's frozen BN,
``slope * (x - mean) / sqrt(var + eps) + bias``; in train mode the fork's TRAIN BN
(batch statistics, biased moving average with momentum 0.95), or the stored
statistics when frozen (`pspnet_caffe.train.bn.freeze_bn`).

The paper's experiments are config fields: ``bins`` (``()`` = the dilated-FCN
baseline: conv5_4 directly on conv5_3), ``pool`` ("ave" | "max"), ``reduction``
(the 1x1 dimension reduction; without it the pooled maps are upsampled and
concatenated as they are), ``aux_width`` (0 = no aux head), ``blocks`` (depth).
"""
from __future__ import annotations

import torch
from torch import nn

from .batchnorm2d import BatchNorm2d
from .config import PSPNetConfig, preset_config
from .fuse import fuse as fused_copy
from .layers.interp import interp
from .layers.pooling import pool2d
from .metadata import preset_meta


def _conv(cin, cout, k, stride=1, dilation=1, bias=False):
    pad = dilation * (k - 1) // 2
    return nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation, bias=bias)


class Stem(nn.Module):
    """conv1_1_3x3_s2, conv1_2_3x3, conv1_3_3x3 (+BN+ReLU), then pool1_3x3_s2 (MAX 3/2/1, ceil)."""

    def __init__(self, widths, eps):
        super().__init__()
        w1, w2, w3 = widths
        self.conv1, self.bn1 = _conv(3, w1, 3, stride=2), BatchNorm2d(w1, eps=eps)
        self.conv2, self.bn2 = _conv(w1, w2, 3), BatchNorm2d(w2, eps=eps)
        self.conv3, self.bn3 = _conv(w2, w3, 3), BatchNorm2d(w3, eps=eps)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return pool2d(x, "max", (3, 3), (2, 2), (1, 1))


class Bottleneck(nn.Module):
    """convS_I_1x1_reduce -> convS_I_3x3 -> convS_I_1x1_increase, + shortcut, ReLU.

    ``reduce_stride``/``conv_stride``: where the block's stride sits (release-specific).
    """

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
        y = self.relu(self.bn1(self.conv1(x)))
        if blobs is not None:
            blobs[f"{name}_1x1_reduce"] = y
        y = self.relu(self.bn2(self.conv2(y)))
        if blobs is not None:
            blobs[f"{name}_3x3"] = y
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        if blobs is not None:
            blobs[f"{name}_1x1_increase"] = y
            if self.downsample is not None:
                blobs[f"{name}_1x1_proj"] = shortcut
        return self.relu(shortcut + y)


class PyramidStage(nn.Module):
    """conv5_3_pool{b}: AVE (or MAX) pool (fixed kernel = stride) -> 1x1 conv -> BN -> ReLU.

    Without dimension reduction (``cout`` None) the pooled map is the stage's output.
    """

    def __init__(self, cin, cout, kernel, eps, pool="ave"):
        super().__init__()
        self.kernel, self.pool = kernel, pool
        if cout is not None:
            self.conv, self.bn = _conv(cin, cout, 1), BatchNorm2d(cout, eps=eps)
            self.relu = nn.ReLU(inplace=True)
        else:
            self.conv = None

    def forward(self, x, blobs=None, name=None):
        k = (self.kernel, self.kernel)
        y = pool2d(x, self.pool, k, k, (0, 0))
        z = y if self.conv is None else self.relu(self.bn(self.conv(y)))
        if blobs is not None:
            blobs[name] = y
            if self.conv is not None:
                blobs[f"{name}_conv"] = z
        return z


class PyramidPooling(nn.Module):
    """The PPM: stages in bin order; output concat(x, pool6, pool3, pool2, pool1).

    No stages (no bins): x itself (the dilated-FCN baseline).
    """

    def __init__(self, cin, width, kernels, eps, pool="ave"):
        super().__init__()
        self.stages = nn.ModuleList(PyramidStage(cin, width, k, eps, pool) for k in kernels)

    def forward(self, x, blobs=None, bins=None):
        if not self.stages:
            return x
        size = tuple(x.shape[-2:])
        if blobs is None:
            pooled = [interp(stage(x), size) for stage in self.stages]
        else:
            pooled = []
            for b, stage in zip(bins, self.stages):
                pooled.append(interp(stage(x, blobs, f"conv5_3_pool{b}"), size))
                blobs[f"conv5_3_pool{b}_interp"] = pooled[-1]
        return torch.cat([x] + pooled[::-1], dim=1)


class Head(nn.Module):
    """conv5_4 (3x3) + BN + ReLU + dropout, as `head`; conv6 lives in PSPNet.classifier."""

    def __init__(self, cin, width, dropout, eps):
        super().__init__()
        self.conv, self.bn = _conv(cin, width, 3), BatchNorm2d(width, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.relu(self.bn(self.conv(x))))


class AuxHead(nn.Module):
    """conv4_24 3x3 + conv4_24/bn + ReLU + dropout + conv6_1 (training-only branch)."""

    def __init__(self, cin, width, classes, dropout, eps):
        super().__init__()
        self.conv, self.bn = _conv(cin, width, 3), BatchNorm2d(width, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = _conv(width, classes, 1, bias=True)

    def forward(self, x):
        return self.classifier(self.dropout(self.relu(self.bn(self.conv(x)))))


class PSPNet(nn.Module):
    """PSPNet of the Caffe release; ``model(x)`` -> (N, classes, H, W) raw scores.

    ``x``: (N, 3, H, W) float32, BGR, mean-subtracted (see `psp_torch.preprocess`).
    In train mode the result is ``{"out": ..., "aux": ...}`` ("aux" only with an aux head).
    """

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
        self.ppm = PyramidPooling(cin, c.ppm_width if c.reduction else None, c.pool_kernels,
                                  eps, c.pool)
        self.head = Head(c.concat_width, c.head_width, c.dropout, eps)
        self.classifier = _conv(c.head_width, c.num_classes, 1, bias=True)
        self.aux = (AuxHead(c.out_widths[2], c.aux_width, c.num_classes, c.dropout, eps)
                    if c.aux else None)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor):
        size = tuple(x.shape[-2:])
        x = self.stem(x)
        x = self.layer2(self.layer1(x))
        c4 = self.layer3(x)
        x = self.layer4(c4)
        x = self.classifier(self.head(self.ppm(x)))
        out = interp(x, size)
        if not self.training:
            return out
        if self.aux is None:
            return {"out": out}
        return {"out": out, "aux": interp(self.aux(c4), size)}

    def forward_blobs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every top blob of the deploy net under its Caffe name, for parity checks.

        In-place chains hold their final value, as in Caffe (conv -> BN -> ReLU:
        after the ReLU; 1x1_increase and 1x1_proj: after their BN).
        """
        blobs = {}
        size = tuple(x.shape[-2:])
        s = self.stem
        y = s.relu(s.bn1(s.conv1(x)))
        blobs["conv1_1_3x3_s2"] = y
        y = s.relu(s.bn2(s.conv2(y)))
        blobs["conv1_2_3x3"] = y
        y = s.relu(s.bn3(s.conv3(y)))
        blobs["conv1_3_3x3"] = y
        y = pool2d(y, "max", (3, 3), (2, 2), (1, 1))
        blobs["pool1_3x3_s2"] = y
        for stage in range(4):
            for i, block in enumerate(getattr(self, f"layer{stage + 1}")):
                name = f"conv{stage + 2}_{i + 1}"
                y = block(y, blobs, name)
                blobs[name] = y
        y = self.ppm(y, blobs, self.config.bins)
        blobs["conv5_3_concat"] = y
        y = self.head(y)
        blobs["conv5_4"] = y
        y = self.classifier(y)
        blobs["conv6"] = y
        blobs["conv6_interp"] = interp(y, size)
        return blobs

    def fuse(self) -> "PSPNet":
        """A copy for inference with every BN folded into its convolution.

        Not bit-identical to the faithful fp32 forward (one rounding instead of two):
        never applied implicitly; bench/bench_forward.py prints its deviation.
        """
        return fused_copy(self)

    # PSPNet.from_caffe(prototxt, weights=None, meta=None) is attached by the Caffe side
    # (psp_torch/caffe/from_caffe.py): this module never imports it.


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
