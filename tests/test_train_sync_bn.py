"""train.bn.sync_bn over two CPU processes (gloo): the fork's BN of the whole batch."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from psp_torch.batchnorm2d import BatchNorm2d
from pspnet_caffe.train.bn import SyncBatchNorm2d, sync_bn

WORLD = 2


def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 5, generator=g) * 3 + 1
    c = torch.randn(4, 3, 5, 5, generator=g)              # loss = sum(y * c)
    return x, c


def _start_bn():
    bn = BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, 0.5, 2.0]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
        bn.running_mean.copy_(torch.tensor([0.5, 0.0, -1.0]))
        bn.running_var.copy_(torch.tensor([2.0, 1.0, 0.5]))
    return bn


def _worker(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=WORLD)
    try:
        model = sync_bn(torch.nn.Sequential(_start_bn())).train()
        assert isinstance(model[0], SyncBatchNorm2d)
        x, c = _batch()
        rows = slice(2 * rank, 2 * rank + 2)
        xr = x[rows].clone().requires_grad_(True)
        y = model(xr)
        (y * c[rows]).sum().backward()
        torch.save({"y": y.detach(), "dx": xr.grad, "dw": model[0].weight.grad,
                    "db": model[0].bias.grad, "mean": model[0].running_mean,
                    "var": model[0].running_var}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_sync_bn_on_two_processes_equals_one_bn_over_the_whole_batch(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    bn = _start_bn().train()
    x, c = _batch()
    x.requires_grad_(True)
    y = bn(x)
    (y * c).sum().backward()
    torch.testing.assert_close(torch.cat([r["y"] for r in ranks]), y.detach(),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([r["dx"] for r in ranks]), x.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sum(r["dw"] for r in ranks), bn.weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(sum(r["db"] for r in ranks), bn.bias.grad, rtol=1e-4, atol=1e-5)
    for r in ranks:       # every process keeps the global statistics, Caffe's moving average
        torch.testing.assert_close(r["mean"], bn.running_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(r["var"], bn.running_var, rtol=1e-5, atol=1e-6)
    # and that is not what the first half alone gives
    half = _start_bn().train()
    half(x[:2].detach())
    assert not torch.allclose(half.running_var, bn.running_var, rtol=1e-3)
