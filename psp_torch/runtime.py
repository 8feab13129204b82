"""The process group of a run: K processes (torchrun) or one, for training and evaluation alike.

- `init`: the process group from torchrun's environment (``WORLD_SIZE``, ``RANK``,
  ``LOCAL_RANK``): gloo on CPU, gloo for CPU tensors and NCCL for CUDA tensors on CUDA, one GPU
  per local rank. A single process needs none (and ``cuda`` becomes ``cuda:0``).
- `Dist`: rank, world, local rank, device; ``main`` is rank 0, the one that writes and reports.
- `all_sum` (numbers, float64), `all_sum_int` (an int64 vector, exact: metric counts),
  `gather_objects`, `barrier`: identity operations on one process.
- `shutdown`: destroys the group `init` made.
- Under torchrun the group meets in the agent's store seen through a prefix of the launch
  (`elastic_store`): torchrun keeps one store for every launch of a group, so a worker
  relaunched by --max-restarts could read a dead worker's address from the launch before.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_timeout


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
    """Join torchrun's process group (none for a single process); the device of this process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        if device.startswith("cuda") and ":" not in device:
            device = "cuda:0"
        return Dist(device=device)
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


def elastic_store(rank: int, world: int) -> dict:
    """Keywords for init_process_group under torchrun: the agent's store through a prefix of
    this launch (TORCHELASTIC_RESTART_COUNT). Without it a relaunched worker may read the
    address a worker of the dead launch left there and fail ("Gloo connectFullMesh failed ...
    Connection refused"). Empty without torchrun's shared store (init_process_group then reads
    the environment itself)."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return {}
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=False, timeout=default_pg_timeout)
    launch = os.environ.get("TORCHELASTIC_RESTART_COUNT") or "0"
    return {"store": dist.PrefixStore(f"launch_{launch}/", store), "rank": rank,
            "world_size": world}


def shutdown(d: Dist) -> None:
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values, d: Dist) -> list[float]:
    """Element-wise sum of a list of numbers over the processes (float64)."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if d.world > 1:
        if d.device.startswith("cuda"):
            t = t.to(d.device)
        dist.all_reduce(t)
    return t.cpu().tolist()


def all_sum_int(vec, d: Dist) -> np.ndarray:
    """Element-wise sum of an integer vector over the processes, exact (int64, on the CPU)."""
    vec = np.asarray(vec, np.int64)
    if d.world == 1:
        return vec
    t = torch.from_numpy(vec.copy())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.numpy()


def gather_objects(obj, d: Dist) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every process."""
    if d.world == 1:
        return [obj]
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()
