"""bench/bench_train.py runs (slim net, tiny crop, CPU) and produces its rows; no timing asserted."""
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import bench_train  # noqa: E402


def test_bench_train_rows():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        row = bench_train.overhead("pspnet50slim", 65, 2, 2, "cpu", "none", 0, lambda *a: None)
        mem = bench_train.memory("pspnet50slim", 65, 2, "cpu", 600)
    finally:
        torch.set_num_threads(n)
    assert row["bare_s"] > 0 and row["cli_s"] > 0 and row["checkpoint_s"] > 0
    assert mem["peak_mib"] and mem["peak_mib"] > 0, mem
    text = bench_train.report({"machine": "m", "device": "cpu", "overhead": [row],
                               "memory": [mem]})
    assert "| pspnet50slim@65 | 2" in text and "harness overhead" in text
