"""The benchmark code runs (tiny settings, CPU) and its measuring tools are right.

No timing is asserted (timings belong to bench/, never to tests); what is asserted:
the MAC count, BN folding's arithmetic, and that each bench produces its rows.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import bench_forward  # noqa: E402
import needs  # noqa: E402
import psp_torch  # noqa: E402
from psp_torch.flops import count_macs, gmacs  # noqa: E402
from psp_torch.fuse import fold_bn, fuse  # noqa: E402


def _hook_count(model, shape) -> int:
    """MACs by forward hooks on nn.Conv2d (another way than the operator counter)."""
    total = [0]

    def hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total[0] += out.numel() * (mod.in_channels // mod.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(shape))
    finally:
        for h in handles:
            h.remove()
    return total[0]


def test_gmac_of_pspnet50_at_473_is_the_reference_161_5():
    macs = count_macs(psp_torch.pspnet50_ade20k(), (1, 3, 473, 473))
    assert macs == 161_528_775_872
    assert abs(macs / 1e9 - 161.5) < 0.05


def test_gmac_counter_agrees_with_conv_hooks():
    model = bench_forward.build("pspnet50slim")
    assert count_macs(model, (2, 3, 65, 73)) == _hook_count(model, (2, 3, 65, 73))
    assert gmacs(model, (65, 73), batch=2) == pytest.approx(count_macs(model, (2, 3, 65, 73)) / 1e9)
    # the model is left on its device, with its weights
    assert next(model.parameters()).device.type == "cpu"


def test_fold_bn_equals_conv_then_bn():
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(5, 7, 3, stride=2, padding=2, dilation=2, bias=True)
    bn = nn.BatchNorm2d(7, eps=1e-3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(7, generator=g))
        bn.running_var.copy_(torch.rand(7, generator=g) + 0.1)
        bn.weight.copy_(torch.randn(7, generator=g))
        bn.bias.copy_(torch.randn(7, generator=g))
    bn.eval()
    x = torch.randn(2, 5, 17, 19, generator=g)
    with torch.no_grad():
        ref = bn(conv(x))
        out = fold_bn(conv, bn)(x)
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    assert not torch.equal(out, conv(x))  # the BN was not the identity


def test_fuse_pspnet_copy():
    model = bench_forward.build("pspnet50slim")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = fuse(model)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert fused.fused_pairs == n_bn > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    x = torch.randn(1, 3, 65, 65, generator=torch.Generator().manual_seed(2)) * 50
    with torch.no_grad():
        ref, out = model(x), fused(x)
    rel = float((out - ref).abs().max() / ref.abs().max())
    assert rel < 1e-5, rel


def test_bench_forward_rows():
    res = bench_forward.run(specs=("pspnet50slim:65",), variants=bench_forward.VARIANTS,
                            repeat=1, mm_n=256, log=lambda *a: None, bf16="on")
    rows = {r["variant"]: r for r in res["rows"]}
    assert set(rows) == set(bench_forward.VARIANTS)
    assert rows["fp32"]["max_dev"] == 0.0
    assert 0 < rows["fuse"]["max_dev"] < 1e-4
    assert 0 < rows["bf16"]["max_dev"] < 0.1
    assert all(r["s_per_img"] > 0 and r["gmac"] > 0 and r["roofline"] > 0 for r in rows.values())
    assert "| pspnet50slim" in bench_forward.report(res)


def test_cpu_support_is_read_from_torch():
    from common import bf16_skip_reason, cpu_support
    support = cpu_support()
    assert support["capability"] == torch.backends.cpu.get_cpu_capability()
    assert (bf16_skip_reason(support) is None) == support["bf16_fast"]
    slow = dict(support, bf16_fast=False, capability="AVX2", native_bf16=[])
    assert "AVX2" in bf16_skip_reason(slow) and "avx512_bf16" in bf16_skip_reason(slow)


def test_bench_forward_skips_bf16_where_the_cpu_is_slow_at_it(monkeypatch):
    """On a CPU without fast bf16 (auto) no bf16 matmul beyond the bounded probe runs:
    the bf16 row is there as 'skipped' with the reason, the fp32 rows keep their roofline."""
    import common
    monkeypatch.setattr(bench_forward, "bf16_skip_reason", lambda: "no fast bf16 (test)")
    sides = []
    real = bench_forward.matmul_gmacs

    def counted(n=4096, repeat=5, dtype=None, device="cpu"):
        if dtype == torch.bfloat16:
            sides.append(n)
        return real(n, repeat=repeat, dtype=dtype, device=device)
    monkeypatch.setattr(bench_forward, "matmul_gmacs", counted)
    monkeypatch.setattr(common, "matmul_gmacs", counted)
    res = bench_forward.run(specs=("pspnet50slim:65",), variants=("fp32", "bf16"), repeat=1,
                            mm_n=4096 // 8, log=lambda *a: None)
    assert [r["variant"] for r in res["rows"]] == ["fp32"]
    assert res["rows"][0]["mm_gmac_s"] > 0 and res["rows"][0]["roofline"] > 0
    assert sides == [256], sides                  # the probe only
    text = bench_forward.report(res)
    assert "| bf16" in text and "skipped" in text and "no fast bf16 (test)" in text
    assert "bf16 mm at 256:" in res["skipped"]["bf16"]


def test_bench_forward_bounds_a_forced_bf16_roofline(monkeypatch):
    monkeypatch.setattr(bench_forward, "bf16_skip_reason", lambda: "no fast bf16 (test)")
    res = bench_forward.run(specs=("pspnet50slim:65",), variants=("fp32", "bf16"), repeat=1,
                            mm_n=1024, log=lambda *a: None, bf16="on")
    assert res["mm_n_bf16"] == bench_forward.BF16_BOUNDED_MM
    assert "bounded to a 512 matmul" in bench_forward.report(res)


def test_bench_gpu_runs_on_cpu():
    import bench_gpu
    res = bench_gpu.run(config="pspnet50slim:473", size=65, device="cpu", batches=(1,),
                        precisions=("fp32", "bf16"), channels_last=(False, True),
                        compile_modes=(False,), repeat=1, warmup=0, mm_n=256, log=lambda *a: None)
    assert len(res["rows"]) == 4
    ref = [r for r in res["rows"] if r["precision"] == "fp32" and not r["channels_last"]][0]
    assert ref["max_dev"] == 0.0
    assert all(r["img_s"] > 0 for r in res["rows"])
    assert "| 1" in bench_gpu.report(res)
    assert bench_gpu.dense_peak("NVIDIA H100 80GB HBM3")["bf16"] == 989


@needs.ONNX
def test_bench_onnx_rows():
    import bench_onnx
    res = bench_onnx.run(config="pspnet50slim", size=65, repeat=1, threads=1, log=lambda *a: None)
    rows = {r["engine"]: r for r in res["rows"]}
    assert set(rows) == {"pytorch", "pytorch fuse", "onnxruntime"} and res["threads"] == 1
    assert rows["pytorch"]["ratio"] == 1.0 and rows["pytorch"]["max_dev"] == 0.0
    assert 0 < rows["onnxruntime"]["max_dev"] < 1e-4
    assert all(r["s_per_img"] > 0 and r["ratio"] > 0 for r in rows.values())
    rep = bench_onnx.report(res)
    assert "pspnet50slim@65" in rep and "| onnxruntime " in rep


def test_run_py_reports_missing_and_skipped_benches(capsys):
    import run as bench_run
    rows = bench_run.child_bench("nothing", "no_such_bench.py", [], timeout=10)
    assert rows == [["nothing", "-", "skipped: bench/no_such_bench.py is not in this tree"]]
    if not torch.cuda.is_available():
        assert bench_run.main(["--only", "gpu"]) == 0
        out = capsys.readouterr().out
        assert "skipped: " in out and "no CUDA device" in out


def test_bench_forward_engines_rows(monkeypatch):
    """The engines table has a row per engine (default engines, bf16 ones where the CPU does
    bf16 fast, else a 'skipped' row), each with its deviation from the float64 forward; an
    engine that cannot be prepared is its row with the one-line reason. The compiler is a
    stand-in here (compiling is tests/test_compiled.py's, and slow)."""
    import psp_torch.compiled
    monkeypatch.setattr(psp_torch.compiled, "compile_model", lambda model, **k: model)

    def no_export(*a, **k):
        raise RuntimeError("exporter unavailable (test)\nsecond line")
    monkeypatch.setattr(bench_forward, "_onnx_engine", no_export)
    res = bench_forward.run_engines(specs=("pspnet50slim:33",), rounds=1, mm_n=128,
                                    log=lambda *a: None)
    rows = {r["engine"]: r for r in res["rows"]}
    assert set(rows) == set(bench_forward.DEFAULT_ENGINES)
    assert rows["onnxruntime"]["error"] == "RuntimeError: exporter unavailable (test)"
    timed = [r for r in rows.values() if "error" not in r]
    assert {"eager", "fuse", "compiled"} <= {r["engine"] for r in timed}
    assert rows["eager"]["x_eager"] == 1.0
    for e in ("eager", "fuse", "compiled"):
        assert 0 < rows[e]["max_dev"] < 1e-5 and rows[e]["argmax"] > 0.99, rows[e]
    if "error" not in rows["bf16"]:
        assert 1e-5 < rows["bf16"]["max_dev"] < 0.1
    else:
        assert rows["bf16"]["error"].startswith("skipped: ")
    assert all(r["roofline"] > 0 and r["rounds"] == 1 for r in timed)
    text = bench_forward.report_engines(res)
    assert text.count("| pspnet50slim@33 |") == len(bench_forward.DEFAULT_ENGINES)
    assert "exporter unavailable (test)" in text and "second line" not in text


def test_bench_bigimage_measures_both_modes_and_compares_their_labels():
    """bench_bigimage at a toy size: its children run, strips and whole give the same labels."""
    import subprocess
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_bigimage.py"), "--size", "0",
                        "--check-size", "40", "--classes", "5", "--crop", "49", "--base", "60"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[0].startswith("machine: ") and lines[-1].startswith("load average at end")
    row = [ln for ln in lines if ln.startswith("40 x 40, 5 classes:")]
    assert len(row) == 1 and "labels identical" in row[0] and "whole image" in row[0]
