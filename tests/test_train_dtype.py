"""The model's dtype has one home, the model: sync_bn keeps it (and the device), the loss never
lowers a float64 model to float32, and BN's batch statistics are two-pass in at least float32
on every path (the CUDA SyncBatchNorm2d's included: its statistics function is tested here on
CPU with a mean that dwarfs the spread, where E[x^2] - mean^2 in float32 loses every digit)."""
import pytest
import torch
import torch.distributed as dist
from torch import nn

from psp_torch.pspnet_bn import BatchNorm2d, batch_statistics
from pspnet_caffe.train.bn_statistics import (AllReduceBatchNorm2d, SyncBatchNorm2d, global_statistics,
                                   merge_statistics, sync_bn)
from pspnet_caffe.train.loss import deep_supervision_loss

MEAN, SPREAD = 1000.0, 0.1        # float32 ulp of MEAN^2 = 0.06, far above the variance 0.01


def _offset_batch(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x64 = MEAN + SPREAD * torch.randn(4, 3, 9, 7, generator=g, dtype=torch.float64)
    x64 = x64 + torch.arange(3, dtype=torch.float64).view(1, 3, 1, 1) * 250   # per channel
    return x64.to(dtype), x64


def _reference(x64):
    mean = x64.mean(dim=(0, 2, 3))
    return mean, ((x64 - mean.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3))


def test_statistics_are_two_pass_where_the_mean_dwarfs_the_spread():
    x32, x64 = _offset_batch()
    want_mean, want_var = _reference(x64)
    mean, var = batch_statistics(x32)
    assert mean.dtype == var.dtype == torch.float32
    torch.testing.assert_close(var.double(), want_var, rtol=1e-3, atol=0)
    torch.testing.assert_close(mean.double(), want_mean, rtol=1e-6, atol=0)
    # what the CUDA path used to compute: E[x^2] - mean^2 in float32, off by far more
    naive = (x32 * x32).mean(dim=(0, 2, 3)) - x32.mean(dim=(0, 2, 3)) ** 2
    assert ((naive.double() - want_var).abs() / want_var).max() > 0.1
    # float64 in, float64 statistics out
    mean64, var64 = batch_statistics(x64)
    assert var64.dtype == torch.float64
    torch.testing.assert_close(var64, want_var, rtol=1e-12, atol=0)


def test_merged_statistics_of_parts_equal_those_of_the_whole():
    """What global_statistics does with the processes' statistics: parts of unequal size."""
    x32, x64 = _offset_batch(seed=1)
    want_mean, want_var = _reference(x64)
    parts = [x32[:1], x32[1:2, :, :5], x32[1:2, :, 5:], x32[2:]]
    stats = [batch_statistics(p) for p in parts]
    counts = torch.tensor([p.numel() // p.shape[1] for p in parts], dtype=torch.float32)
    mean, var = merge_statistics(counts, torch.stack([s[0] for s in stats]),
                                 torch.stack([s[1] for s in stats]))
    torch.testing.assert_close(var.double(), want_var, rtol=1e-3, atol=0)
    torch.testing.assert_close(mean.double(), want_mean, rtol=1e-6, atol=0)


def test_global_statistics_through_a_process_group():
    """The collective path (all_gather of each process's statistics), one gloo process."""
    assert not dist.is_initialized()
    x32, x64 = _offset_batch(seed=2)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        mean, var = global_statistics(x32)
        mean64, var64 = global_statistics(x64)
    finally:
        dist.destroy_process_group()
    want_mean, want_var = _reference(x64)
    torch.testing.assert_close(var.double(), want_var, rtol=1e-3, atol=0)
    torch.testing.assert_close(var64, want_var, rtol=1e-12, atol=0)
    assert mean64.dtype == torch.float64


@pytest.mark.parametrize("kind", [SyncBatchNorm2d, BatchNorm2d])
def test_moving_variance_where_the_mean_dwarfs_the_spread(kind):
    """SyncBatchNorm2d (torch's SyncBatchNorm falls back to a local BN on CPU without a
    process group: its own moving average runs) and the CPU BatchNorm2d: the fork's moving
    average of the biased variance, float32 against the float64 reference."""
    x32, x64 = _offset_batch(seed=3)
    bn = kind(3, momentum=0.05)
    bn.train()
    bn(x32)
    _, want_var = _reference(x64)
    torch.testing.assert_close(bn.running_var.double(), 0.95 * 1.0 + 0.05 * want_var,
                               rtol=1e-6, atol=0)
    # 0.05 * var is 5e-4 against 0.95: compare the batch's share itself
    share = (bn.running_var.double() - 0.95) / 0.05
    torch.testing.assert_close(share, want_var, rtol=2e-2, atol=0)


def _bn_net(dtype, device="cpu"):
    return nn.Sequential(nn.Conv2d(3, 4, 3), BatchNorm2d(4),
                         nn.Sequential(nn.Conv2d(4, 4, 1), BatchNorm2d(4))).to(device, dtype)


def test_sync_bn_keeps_dtype_and_device_and_values():
    for dtype in (torch.float64, torch.float32):
        net = _bn_net(dtype)
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, BatchNorm2d):
                    m.running_mean.copy_(torch.rand(4, dtype=torch.float64) / 3)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 2.0)
        m0 = net[1]
        m0.frozen = True
        m0.weight.requires_grad_(False)
        before = {k: v.clone() for k, v in net.state_dict().items()}
        sync_bn(net)
        bns = [m for m in net.modules() if isinstance(m, AllReduceBatchNorm2d)]
        assert len(bns) == 2 and bns[0].frozen and not bns[0].weight.requires_grad
        after = net.state_dict()
        assert after.keys() == before.keys()
        for k, v in before.items():
            assert after[k].dtype == v.dtype and after[k].device == v.device, k
            assert torch.equal(after[k], v), k              # no value rounded on the way
        x = torch.randn(2, 3, 6, 6, dtype=torch.float64).to(dtype)
        assert net(x).dtype == dtype


def test_loss_never_lowers_float64_and_lifts_half_to_float32():
    torch.manual_seed(0)
    scores = torch.randn(2, 5, 4, 3, dtype=torch.float64)
    labels = torch.randint(0, 5, (2, 4, 3))
    labels[0, 0] = 255
    total, main, aux = deep_supervision_loss({"out": scores, "aux": scores}, labels, aux_weight=0.4)
    assert total.dtype == main.dtype == aux.dtype == torch.float64
    logp = torch.log_softmax(scores, dim=1)
    valid = labels != 255
    want = -logp.gather(1, labels.clamp(max=4)[:, None])[:, 0][valid].sum() / valid.sum()
    assert abs(float(main) - float(want)) <= 1e-15 * float(want)     # float64 all the way
    t16, m16, _ = deep_supervision_loss({"out": scores.to(torch.bfloat16)}, labels, aux_weight=0.4)
    assert m16.dtype == torch.float32
