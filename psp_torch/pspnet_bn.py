"""PSPNet's BN: `BatchNorm2d`, an `nn.BatchNorm2d` with the fork's BN semantics in training.

(CaffeNet's BN layers are `psp_torch.layers.bn` (the fork's type BN) and
`psp_torch.layers.batchnorm` (upstream's BatchNorm, Scale, Bias); which statistics BN
trains on (frozen, synchronised) is `pspnet_caffe.train.bn_statistics`.)

The fork's ``BN`` layer (``bn_layer.cpp``), per channel c over N, H, W:

* TRAIN, ``frozen: false``: ``y = slope * (x - mean_b) / sqrt(var_b + eps) + bias`` with
  the batch mean and the *biased* batch variance (divisor N*H*W); gradients flow through
  the batch statistics; after every TRAIN forward the stored statistics become
  ``stored = (1 - momentum) * batch + momentum * stored`` with the biased variance
  (momentum 0.95 in the release prototxts; no n/(n-1) correction, unlike torch).
* TEST, or ``frozen: true`` in any phase: the stored statistics, never updated; slope
  and bias get lr 0 (the fork forces it; `pspnet_caffe.train.bn_statistics.freeze_bn` sets
  ``requires_grad`` False).

Torch's own ``momentum`` attribute keeps torch's meaning (weight of the batch): Caffe's
0.95 is ``momentum=0.05`` here. In eval mode (and frozen) the computation is
`nn.BatchNorm2d`'s own, so inference stays bit-identical to the plain module.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .presets import BN_MOMENTUM

# torch's momentum = Caffe's (1 - momentum), computed in float32 as Caffe does
TORCH_MOMENTUM = float(np.float32(1) - np.float32(BN_MOMENTUM))


class BatchNorm2d(nn.BatchNorm2d):
    """The fork's BN: batch statistics + biased moving average in train, or ``frozen``."""

    def __init__(self, num_features, eps=1e-5, momentum=TORCH_MOMENTUM, **kw):
        super().__init__(num_features, eps=eps, momentum=momentum, **kw)
        self.frozen = False

    def forward(self, x):
        if not self.training or self.frozen:
            if self.training:          # frozen: stored statistics, as in eval
                return F.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                    self.bias, False, 0.0, self.eps)
            return super().forward(x)
        if x.numel() > x.shape[1]:
            y = F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        else:   # one value per channel (a 1x1 pyramid level, batch 1): Caffe gives var 0
            y = batch_norm_reference(x, self.weight, self.bias, self.eps)
        mean, var = batch_statistics(x)
        caffe_moving_average(self, mean, var)
        return y

    def extra_repr(self):
        return super().extra_repr() + (", frozen" if self.frozen else "")


def statistics_dtype(dtype: torch.dtype) -> torch.dtype:
    """The arithmetic of the batch statistics: at least float32 (a half-precision activation
    under autocast), never lower than the input (float64 stays float64)."""
    return torch.promote_types(dtype, torch.float32)


@torch.no_grad()
def batch_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, biased variance) per channel over N, H, W, in `statistics_dtype`: two-pass
    (``torch.var_mean``: the variance is the mean of ``(x - mean)^2``, not ``E[x^2] - mean^2``,
    which cancels where the mean dwarfs the spread)."""
    var, mean = torch.var_mean(x.detach().to(statistics_dtype(x.dtype)), dim=(0, 2, 3),
                               unbiased=False)
    return mean, var


def batch_norm_reference(x, weight, bias, eps):
    """The fork's TRAIN BN written out (autograd gives its backward); any batch shape."""
    var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False, keepdim=True)
    return ((x - mean) * torch.rsqrt(var + eps) * weight.view(1, -1, 1, 1)
            + bias.view(1, -1, 1, 1))


@torch.no_grad()
def caffe_moving_average(bn: nn.BatchNorm2d, mean: torch.Tensor, var_biased: torch.Tensor):
    """``stored = m * stored + (1 - m) * batch`` (Caffe m = 1 - bn.momentum), biased variance."""
    keep = 1.0 - bn.momentum if bn.momentum != TORCH_MOMENTUM else BN_MOMENTUM
    bn.running_mean.mul_(keep).add_(mean.to(bn.running_mean.dtype), alpha=bn.momentum)
    bn.running_var.mul_(keep).add_(var_biased.to(bn.running_var.dtype), alpha=bn.momentum)
    bn.num_batches_tracked.add_(1)
