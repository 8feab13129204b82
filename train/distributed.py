"""torch.distributed for training: K processes (torchrun) compute what one process computes.

- The process group, rank/world and the all-reduce helpers are `psp_torch.runtime`'s (shared
  with eval/run.py); re-exported here.
- Each process takes B/K images of every global batch (`data.rank_positions`); BN statistics
  are those of the global batch (`pspnet_caffe.train.bn_statistics.sync_bn`) unless BN is frozen.
- The loss of each process is its sum of per-pixel losses divided by G/K, G = valid pixels of
  the global batch (all-reduced): DDP averages the K gradients, so the update is that of
  sum / G over the global batch, as one process with B images computes.
- Rank 0 alone writes checkpoints, logs and model files.
"""
from __future__ import annotations

import inspect

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from psp_torch.runtime import (Dist, all_sum, all_sum_int, barrier, gather_objects,  # noqa: F401
                               init, shutdown)


def wrap(model: torch.nn.Module, d: Dist, *, find_unused: bool = False) -> torch.nn.Module:
    """DDP over the processes (the model itself on one process)."""
    if d.world == 1:
        return model
    ids = [d.local_rank] if d.device.startswith("cuda") else None
    # buffers (BN statistics) need no broadcast: every process updates them identically
    # from the global batch (or they are frozen)
    kw = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
          inspect.signature(DDP).parameters else {"broadcast_buffers": False})
    return DDP(model, device_ids=ids, find_unused_parameters=find_unused, **kw)
