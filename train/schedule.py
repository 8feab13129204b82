"""The poly learning-rate schedule (paper section 5.1; Caffe's ``lr_policy: "poly"``).

``lr = base_lr * (1 - iteration / max_iter) ** power``, ``iteration`` = number of updates
already done (0 for the first update), evaluated before every update, as Caffe's
``SGDSolver::GetLearningRate`` does with ``iter_``. Power 0.9 in the paper.
"""
from __future__ import annotations


def poly_lr(base_lr: float, iteration: int, max_iter: int, power: float = 0.9) -> float:
    """The learning rate of the update that follows `iteration` completed updates."""
    if max_iter <= 0:
        raise ValueError(f"max_iter must be positive, not {max_iter}")
    if not 0 <= iteration <= max_iter:
        raise ValueError(f"iteration {iteration} outside 0..max_iter ({max_iter})")
    return base_lr * (1.0 - iteration / max_iter) ** power
