"""One training iteration: poly LR, forward in train mode, deep-supervision loss, SGD update.

The order is Caffe's ``Solver::Step``: clear the gradients, forward + backward of
``main + aux_weight * aux``, then the update with the LR of ``iteration`` completed
updates (`poly_lr`), every group at ``lr * lr_mult``.
"""
from __future__ import annotations

import contextlib

import torch

from .loss import deep_supervision_loss
from .optim import set_lr
from .schedule import poly_lr


def train_step(model, optimizer, images, labels, *, iteration: int, max_iter: int,
               base_lr: float, aux_weight: float, loss_scale: float = 1.0,
               normalizer: float | None = None, scaler=None, autocast=None,
               power: float = 0.9) -> dict:
    """Run one update; returns {"loss", "main", "aux", "lr"} (floats; lr of the base group).

    `images`: N x 3 x H x W float (as `psp_torch.preprocess` makes them); `labels`: N x H x W
    integer with 255 = ignore. `scaler`: a torch.amp.GradScaler (mixed precision);
    `autocast`: a context manager factory (e.g. ``lambda: torch.autocast("cuda")``) or None.
    """
    lr = poly_lr(base_lr, iteration, max_iter, power)
    set_lr(optimizer, lr)
    if not model.training:
        model.train()
    optimizer.zero_grad(set_to_none=True)
    with (autocast() if autocast is not None else contextlib.nullcontext()):
        outputs = model(images)
    if isinstance(outputs, torch.Tensor):
        outputs = {"out": outputs}
    total, main, aux = deep_supervision_loss(outputs, labels, aux_weight=aux_weight,
                                             loss_scale=loss_scale, normalizer=normalizer)
    if scaler is not None:
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        total.backward()
        optimizer.step()
    return {"loss": float(total.detach()), "main": float(main.detach()),
            "aux": float(aux.detach()), "lr": lr}
