"""Batch normalisation for training, as the PSPNet fork's ``BN`` layer does it.

Trainable BN (the default, ``frozen: false``): `psp_torch.pspnet_bn.BatchNorm2d` in train
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

from psp_torch.pspnet_bn import BatchNorm2d, batch_statistics, caffe_moving_average

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


def merge_statistics(counts: torch.Tensor, means: torch.Tensor, variances: torch.Tensor):
    """(mean, biased variance) of the union of K parts from each part's (count, mean, biased
    variance): counts (K,), means and variances (K, C). Chan et al.'s parallel combination,
    ``var = sum n_k (var_k + (mean_k - mean)^2) / sum n_k``: every term is a non-negative
    spread, nothing of the size of the mean squared cancels."""
    n = counts[:, None]
    total = counts.sum()
    mean = (n * means).sum(0) / total
    var = (n * (variances + (means - mean) ** 2)).sum(0) / total
    return mean, var


@torch.no_grad()
def global_statistics(x: torch.Tensor, group=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, biased variance) per channel of the batch of every process of `group` (this
    process's alone without a process group): each process's two-pass statistics
    (`batch_statistics`, at least float32, float64 for a float64 model), gathered and merged
    (`merge_statistics`)."""
    mean, var = batch_statistics(x)
    if not (dist.is_available() and dist.is_initialized()):
        return mean, var
    c = mean.numel()
    count = torch.full((1,), float(x.numel() // x.shape[1]), dtype=mean.dtype,
                       device=mean.device)
    local = torch.cat([count, mean, var])
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, local, group=group)
    p = torch.stack(parts)
    return merge_statistics(p[:, 0], p[:, 1:1 + c], p[:, 1 + c:])


class SyncBatchNorm2d(nn.SyncBatchNorm):
    """`nn.SyncBatchNorm` normalising like torch (global batch statistics) but keeping the
    fork's moving average of the global biased variance, and honouring ``frozen``."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.frozen = False

    def forward(self, x):
        if not self.training or self.frozen:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        mean, var = global_statistics(x, self.process_group)
        momentum, self.momentum = self.momentum, 0.0      # torch must not touch the stats
        try:
            y = super().forward(x)
        finally:
            self.momentum = momentum
        caffe_moving_average(self, mean, var)
        self.num_batches_tracked.sub_(1)                  # super() counted this batch already
        return y


class _SumOverProcesses(torch.autograd.Function):
    """all_reduce(SUM) with its gradient: every process's output depends on every input, so
    the gradient of an input is the sum of the output gradients of all processes."""

    @staticmethod
    def forward(ctx, tensor, group):
        ctx.group = group
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class AllReduceBatchNorm2d(BatchNorm2d):
    """The fork's BN over the global batch of a process group, for devices torch's
    `nn.SyncBatchNorm` does not serve (CPU with gloo: SyncBatchNorm and DDP refuse it).

    Per channel over all processes' N, H, W: ``mean = all_reduce(sum x) / count``,
    ``var = all_reduce(sum (x - mean)^2) / count`` (biased), then the same normalisation and
    moving average as `BatchNorm2d`. The sums go through `_SumOverProcesses`, whose backward
    all-reduces the gradients, so the gradient is that of the global batch (as SyncBatchNorm's
    backward computes it).
    """

    def __init__(self, *args, process_group=None, **kw):
        super().__init__(*args, **kw)
        self.process_group = process_group

    def forward(self, x):
        if not self.training or self.frozen or not (dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        group = self.process_group or dist.group.WORLD
        all_reduce = _SumOverProcesses.apply
        count = torch.tensor([x.numel() // x.shape[1]], dtype=torch.float64)
        dist.all_reduce(count, group=group)
        count = float(count.item())
        mean = all_reduce(x.sum(dim=(0, 2, 3)), group) / count
        centred = x - mean.view(1, -1, 1, 1)
        var = all_reduce((centred * centred).sum(dim=(0, 2, 3)), group) / count
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        caffe_moving_average(self, mean.detach(), var.detach())
        return y


def sync_bn(model: nn.Module, process_group=None) -> nn.Module:
    """Replace every BatchNorm2d of `model` by a global-batch BN (same tensors, dtype and
    device, same frozen): `SyncBatchNorm2d` on CUDA, `AllReduceBatchNorm2d` elsewhere (move
    the model first)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d) and not isinstance(
                child, (nn.SyncBatchNorm, AllReduceBatchNorm2d)):
            kind = SyncBatchNorm2d if child.weight.device.type == "cuda" else AllReduceBatchNorm2d
            new = kind(child.num_features, eps=child.eps, momentum=child.momentum,
                       affine=child.affine, track_running_stats=child.track_running_stats,
                       process_group=process_group, device=child.weight.device,
                       dtype=child.weight.dtype)
            new.load_state_dict(child.state_dict())
            new.weight.requires_grad_(child.weight.requires_grad)
            new.bias.requires_grad_(child.bias.requires_grad)
            new.frozen = getattr(child, "frozen", False)
            setattr(model, name, new)
        else:
            sync_bn(child, process_group)
    return model


__all__ = ["BatchNorm2d", "SyncBatchNorm2d", "AllReduceBatchNorm2d", "freeze_bn", "sync_bn", "bn_warning",
           "MIN_IMAGES_PER_BN_BATCH", "global_statistics", "merge_statistics"]
