"""Deep supervision (paper section 4): softmax cross-entropy of the main and the aux head.

Caffe's ``SoftmaxWithLoss`` with ``ignore_label: 255`` and ``normalization: VALID``, per head:

    loss = - sum over pixels with label != 255 of log softmax(score)[label] / normalizer

normalizer = the number of valid pixels of the batch (both heads see the same labels).
Total = main + aux_weight * aux (0.4 in the paper). Scores are compared with the labels at
the labels' size: the model's outputs are already interpolated to the crop (corner-aligned
Interp, as Caffe's zoom 8). ``loss_scale = 1/8`` reproduces the Caffe era's labels sampled
every 8th pixel: labels[::8, ::8] against the scores at the same pixels, which at crop
sides 8k+1 are exactly the stride-8 score maps (the Interp is exact on the source grid).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _subsample(x: torch.Tensor, step: int) -> torch.Tensor:
    return x[..., ::step, ::step] if step > 1 else x


def head_loss(scores: torch.Tensor, labels: torch.Tensor, ignore_label: int = 255):
    """(sum of per-pixel CE over valid pixels, valid pixel count) of one head."""
    if scores.shape[-2:] != labels.shape[-2:]:
        raise ValueError(f"scores {tuple(scores.shape[-2:])} and labels "
                         f"{tuple(labels.shape[-2:])} differ in size")
    # at least float32 (half-precision scores under autocast), never lower (float64 stays)
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
    total = F.cross_entropy(scores, labels, ignore_index=ignore_label, reduction="sum")
    return total, (labels != ignore_label).sum()


def deep_supervision_loss(outputs: dict, labels: torch.Tensor, *, aux_weight: float,
                          ignore_label: int = 255, loss_scale: float = 1.0,
                          normalizer: float | None = None):
    """(total, main, aux) tensors; aux is 0 when `outputs` has no "aux" or aux_weight is 0.

    `outputs`: ``{"out": N x C x H x W, "aux": ...}`` (or a tensor = "out" only);
    `labels`: N x H x W integer, 255 = ignore. `normalizer` (default: this batch's valid
    pixel count) lets a distributed run divide by the global count.
    """
    if isinstance(outputs, torch.Tensor):
        outputs = {"out": outputs}
    step = 1
    if loss_scale != 1.0:
        step = round(1.0 / loss_scale)
        if step < 1 or abs(step * loss_scale - 1.0) > 1e-6:
            raise ValueError(f"loss_scale must be 1/k for an integer k >= 1, not {loss_scale}")
    labels = _subsample(labels.long(), step)

    def scores_of(name):
        s = outputs[name]
        return _subsample(s, step) if s.shape[-2:] != labels.shape[-2:] else s

    main_sum, valid = head_loss(scores_of("out"), labels, ignore_label)
    if normalizer is None:
        normalizer = valid.clamp(min=1).to(main_sum.dtype)
    main = main_sum / normalizer
    if "aux" in outputs and aux_weight:
        aux_sum, _ = head_loss(scores_of("aux"), labels, ignore_label)
        aux = aux_sum / normalizer
    else:
        aux = torch.zeros((), dtype=main.dtype, device=main.device)
    return main + aux_weight * aux, main, aux
