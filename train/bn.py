"""Batch normalisation for training, as the PSPNet fork's ``BN`` layer does it.

Trainable BN (the default, ``frozen: false``): `psp_torch.batchnorm2d.BatchNorm2d` in train
mode normalises with the batch mean and biased variance and keeps Caffe's moving average
(momentum 0.95, biased variance stored). `freeze_bn` is the fork's ``frozen: true``: the
stored statistics are used and never updated, and slope/bias are not trained (the fork forces
their lr to 0). `sync_bn` gives the same semantics over a process group (statistics of the
whole distributed batch).
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from psp_torch.batchnorm2d import BatchNorm2d, caffe_moving_average

MIN_IMAGES_PER_BN_BATCH = 8


def bn_modules(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def freeze_bn(model: nn.Module) -> int:
    """Freeze every BN of `model` (stored statistics, no slope/bias training); returns the count."""
    count = 0
    for m in bn_modules(model):
        m.frozen = True
        for p in m.parameters(recurse=False):
            p.requires_grad_(False)
        count += 1
    return count


def bn_warning(images_per_bn_batch: int, frozen: bool) -> str | None:
    """The warning for BN trained on too few images per BN batch (None when fine)."""
    if frozen or images_per_bn_batch >= MIN_IMAGES_PER_BN_BATCH:
        return None
    return (f"BN trains on batch statistics of {images_per_bn_batch} image(s) per BN batch "
            f"(fewer than {MIN_IMAGES_PER_BN_BATCH}): noisy statistics; consider --freeze-bn "
            f"(the authors' advice for small batches) or a larger batch / sync BN")


class _GlobalBatchNorm(torch.autograd.Function):
    """The fork's TRAIN BN over the batch of every process of `group` (any device).

    Forward: global per-channel mean and biased variance (float64 sums, all-reduced),
    ``y = slope * (x - mean) / sqrt(var + eps) + bias``. Backward: the BN gradient with the
    global sums of ``g = slope * dy`` and ``g * x_hat`` (as torch's SyncBatchNorm): the loss
    is the sum of every process's loss; slope/bias gradients stay local (DDP reduces them).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps, group):
        c = x.shape[1]
        dims = (0, 2, 3)
        stats = torch.cat([x.sum(dims, dtype=torch.float64),
                           (x * x).sum(dims, dtype=torch.float64),
                           torch.tensor([x.numel() // c], dtype=torch.float64, device=x.device)])
        dist.all_reduce(stats, group=group)
        count = stats[-1]
        mean = stats[:c] / count
        var = (stats[c:2 * c] / count - mean * mean).clamp(min=0)
        mean, var = mean.to(x.dtype), var.to(x.dtype)
        inv_std = torch.rsqrt(var + eps)
        x_hat = (x - mean.view(1, -1, 1, 1)) * inv_std.view(1, -1, 1, 1)
        ctx.save_for_backward(x_hat, weight, inv_std)
        ctx.group, ctx.count = group, count
        return x_hat * weight.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1), mean, var

    @staticmethod
    def backward(ctx, dy, _dmean, _dvar):
        x_hat, weight, inv_std = ctx.saved_tensors
        c, dims = x_hat.shape[1], (0, 2, 3)
        g = dy * weight.view(1, -1, 1, 1)
        sums = torch.cat([g.sum(dims, dtype=torch.float64),
                          (g * x_hat).sum(dims, dtype=torch.float64)])
        dist.all_reduce(sums, group=ctx.group)
        mean_g = (sums[:c] / ctx.count).to(dy.dtype).view(1, -1, 1, 1)
        mean_gx = (sums[c:] / ctx.count).to(dy.dtype).view(1, -1, 1, 1)
        dx = inv_std.view(1, -1, 1, 1) * (g - mean_g - x_hat * mean_gx)
        return dx, (dy * x_hat).sum(dims), dy.sum(dims), None, None


def _distributed(group) -> bool:
    return (dist.is_available() and dist.is_initialized()
            and dist.get_world_size(group) > 1)


class SyncBatchNorm2d(nn.SyncBatchNorm):
    """The fork's BN over the whole distributed batch: global batch mean and biased variance
    in the forward, Caffe's moving average of the global statistics, ``frozen`` honoured.
    Works on CPU (gloo) and GPU; in a single process it is `BatchNorm2d` exactly."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.frozen = False

    def forward(self, x):
        if not self.training or self.frozen:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        if _distributed(self.process_group):
            y, mean, var = _GlobalBatchNorm.apply(x, self.weight, self.bias, self.eps,
                                                  self.process_group)
            caffe_moving_average(self, mean.detach(), var.detach())
            return y
        return BatchNorm2d.forward(self, x)


def sync_bn(model: nn.Module, process_group=None) -> nn.Module:
    """Replace every BatchNorm2d of `model` by `SyncBatchNorm2d` (same tensors, same frozen)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, nn.SyncBatchNorm):
            new = SyncBatchNorm2d(child.num_features, eps=child.eps, momentum=child.momentum,
                                  process_group=process_group)
            new.load_state_dict(child.state_dict())
            new.weight.requires_grad_(child.weight.requires_grad)
            new.bias.requires_grad_(child.bias.requires_grad)
            new.frozen = getattr(child, "frozen", False)
            new.to(child.weight.device)
            setattr(model, name, new)
        else:
            sync_bn(child, process_group)
    return model


__all__ = ["BatchNorm2d", "SyncBatchNorm2d", "freeze_bn", "sync_bn", "bn_warning",
           "MIN_IMAGES_PER_BN_BATCH"]
