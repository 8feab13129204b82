"""torch.distributed for training: K processes (torchrun) compute what one process computes.

- `init`: the process group from torchrun's environment (gloo on CPU, NCCL on CUDA, one GPU per
  local rank); a single process needs none.
- Each process takes B/K images of every global batch (`data.rank_positions`); BN statistics
  are those of the global batch (`pspnet_caffe.train.bn.sync_bn`) unless BN is frozen.
- The loss of each process is its sum of per-pixel losses divided by G/K, G = valid pixels of
  the global batch (all-reduced): DDP averages the K gradients, so the update is that of
  sum / G over the global batch, as one process with B images computes.
- Rank 0 alone writes checkpoints, logs and model files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from pspnet_caffe.train.faults import elastic_store   # a store per torchrun launch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


def init(device: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        if device.startswith("cuda") and ":" not in device:
            device = "cuda:0"
        return Dist(device=device)
    import torch.distributed as dist
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
        dist.init_process_group("cpu:gloo,cuda:nccl", device_id=torch.device(device),
                                **elastic_store(rank, world))
    else:
        dist.init_process_group("gloo", **elastic_store(rank, world))
    return Dist(rank, world, local, device)


def shutdown(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()


def all_sum(values, d: Dist) -> list[float]:
    """Element-wise sum of a list of numbers over the processes (float64)."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if d.world > 1:
        import torch.distributed as dist
        if d.device.startswith("cuda"):
            t = t.to(d.device)
        dist.all_reduce(t)
    return t.cpu().tolist()


def gather_objects(obj, d: Dist) -> list:
    if d.world == 1:
        return [obj]
    import torch.distributed as dist
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def wrap(model: torch.nn.Module, d: Dist, *, find_unused: bool = False) -> torch.nn.Module:
    """DDP over the processes (the model itself on one process)."""
    if d.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    ids = [d.local_rank] if d.device.startswith("cuda") else None
    # buffers (BN statistics) need no broadcast: every process updates them identically
    # from the global batch (or they are frozen)
    import inspect
    kw = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
          inspect.signature(DDP).parameters else {"broadcast_buffers": False})
    return DDP(model, device_ids=ids, find_unused_parameters=find_unused, **kw)
