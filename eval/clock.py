"""Time inside the network against the whole image: the share of evaluation spent outside
the net (scaling, windows, softmax, imresize, scoring, writing) is the harness's overhead.

`NetworkClock` wraps the model callable that the protocol drives; each call is bracketed by a
device synchronisation (CUDA runs asynchronously, so a call returns before its work is done).
Only printed and shown in the progress bar, never written to results.json: a resumed run's
results stay identical to an uninterrupted one.
"""
from __future__ import annotations

import time

import torch


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class NetworkClock:
    """``model`` with the seconds spent inside its calls summed in ``seconds`` and the calls
    counted in ``calls``."""

    def __init__(self, model, device):
        self.model, self.device, self.seconds, self.calls = model, device, 0.0, 0

    def __call__(self, x):
        synchronize(self.device)
        start = time.perf_counter()
        out = self.model(x)
        synchronize(self.device)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


def outside_share(network_seconds: float, total_seconds: float) -> float:
    """Fraction of `total_seconds` not spent in the network (0 when nothing was timed)."""
    if total_seconds <= 0:
        return 0.0
    return min(1.0, max(0.0, 1.0 - network_seconds / total_seconds))
