"""SGD with Caffe's update rule, and the release's per-parameter multipliers as param groups.

Caffe (``sgd_solver.cpp``, L2 regularisation, ``iter_size`` 1), per parameter blob:

    diff    = grad + weight_decay * decay_mult * w
    history = lr * lr_mult * diff + momentum * history        (history starts at 0)
    w      -= history

torch.optim.SGD instead keeps ``buf = momentum * buf + diff`` and steps ``w -= lr * buf``:
the same while the LR is constant, different as soon as it changes (poly changes it every
iteration): Caffe's velocity carries the old LRs, torch's rescales the history with the new
one. `CaffeSGD` is the default; `make_optimizer(kind="torch")` gives torch.optim.SGD with
the same groups.

Groups: every group's ``lr`` is ``base_lr * lr_mult`` (`set_lr`); its effective weight decay
is ``weight_decay * decay_mult``. Multipliers per parameter role come from
`psp_torch.presets.MULTIPLIERS` (read off the release prototxts); a parameter's role from
`psp_torch.pspnet.parameter_role` (the layers the release added are `PSPNet.NEW_LAYERS`),
which the deploy prototxt's ``param`` fields are derived from too.
"""
from __future__ import annotations

import torch
from torch import nn

from psp_torch.presets import MULTIPLIERS
from psp_torch.pspnet import parameter_role


class CaffeSGD(torch.optim.Optimizer):
    """SGD with momentum in Caffe's form: the LR scales the gradient, not the history."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"lr, momentum and weight_decay must be >= 0 "
                             f"(got {lr}, {momentum}, {weight_decay})")
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        lr_mult=1.0, decay_mult=1.0)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            decay = group["weight_decay"] * group["decay_mult"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                diff = p.grad
                if decay != 0:
                    diff = diff.add(p, alpha=decay)
                state = self.state[p]
                history = state.get("history")
                if history is None:
                    history = state["history"] = torch.zeros_like(p)
                history.mul_(momentum).add_(diff, alpha=lr)
                p.sub_(history)
        return loss


def param_groups(model: nn.Module, *, freeze_bn: bool = False) -> list[dict]:
    """Parameters grouped by (lr_mult, decay_mult), in `MULTIPLIERS` order.

    With ``freeze_bn`` the BN slopes and biases are left out (the fork forces their lr to 0).
    Parameters with ``requires_grad`` False are left out too.
    """
    owners = {}
    for mname, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            owners[f"{mname}.{pname}" if mname else pname] = module
    by_role = {role: [] for role in MULTIPLIERS}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        role = parameter_role(name, owners[name])
        if freeze_bn and role.endswith("_bn"):
            continue
        by_role[role].append(p)
    groups = []
    for role, params in by_role.items():
        if params:
            lr_mult, decay_mult = MULTIPLIERS[role]
            groups.append({"params": params, "role": role, "lr_mult": lr_mult,
                           "decay_mult": decay_mult})
    return groups


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    """Every group's lr = base_lr * its lr_mult."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * group.get("lr_mult", 1.0)


def make_optimizer(model: nn.Module, kind: str = "caffe", lr: float = 0.01,
                   momentum: float = 0.9, weight_decay: float = 1e-4,
                   freeze_bn: bool = False) -> torch.optim.Optimizer:
    """CaffeSGD ("caffe") or torch.optim.SGD ("torch") over `param_groups`, lr set for base `lr`."""
    groups = param_groups(model, freeze_bn=freeze_bn)
    if kind == "caffe":
        opt = CaffeSGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    elif kind == "torch":
        for g in groups:
            g["weight_decay"] = weight_decay * g["decay_mult"]
        opt = torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer kind must be 'caffe' or 'torch', not {kind!r}")
    set_lr(opt, lr)
    return opt
