"""ONNX Runtime (CPU) against the PyTorch forward, same model, same input, same threads.

    python bench/bench_onnx.py                 # PSPNet50 at 473, 5 timed calls each
    python bench/bench_onnx.py --quick         # PSPNet50 at 233, 2 timed calls each
    python bench/bench_onnx.py --config pspnet101 --size 713 --threads 2

The model (seeded random weights and BN statistics, `common.build`) is exported
with converter/onnx_export.py (dynamic batch and size) into a temporary file and run
by the session eval/run.py --onnx ships (`common.onnx_session`, built by eval's own
code: ``intra_op_num_threads`` = torch's thread count, ONNX Runtime's default graph
optimisations, which fold BN into the convolutions, so the PyTorch row with
`psp_torch.fuse` is the like-for-like one; the tensor <-> numpy copies included).
The engines' calls are interleaved (one call of each per round), so a change of
the shared machine's load hits all of them alike; the figure is each engine's
median seconds per image and its ratio to the faithful PyTorch forward, plus its
max deviation from it (max |y - y_torch| / max |y_torch|).
"""
from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (build, fmt, interleaved, machine_line, onnx_session,  # noqa: E402
                    peak_rss_mib, table)

import torch  # noqa: E402

FULL = ("pspnet50", 473, 5)
QUICK = ("pspnet50", 233, 2)


def engines(model, onnx_path: Path, threads: int) -> dict:
    """name -> call(x: torch.Tensor) -> torch.Tensor, for the engines compared."""
    from psp_torch.fuse import fuse
    session = onnx_session(onnx_path, threads)
    fused = fuse(model).eval()

    def torch_call(m):
        def call(x):
            with torch.inference_mode():
                return m(x)
        return call

    return {"pytorch": torch_call(model), "pytorch fuse": torch_call(fused),
            "onnxruntime": session}


def run(config: str = "pspnet50", size: int = 473, repeat: int = 5, threads: int | None = None,
        log=print) -> dict:
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run(build(config), config, size, repeat, log)
    finally:
        torch.set_num_threads(before)


def _run(model, config, size, repeat, log) -> dict:
    from pspnet_caffe.converter.onnx_export import OPSET, export_onnx
    threads = torch.get_num_threads()
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)) * 50
    with tempfile.TemporaryDirectory() as tmp:
        log(f"exporting {config} to ONNX (opset {OPSET}) ...")
        t0 = time.perf_counter()
        path = export_onnx(model, Path(tmp) / "model.onnx")
        export_s = time.perf_counter() - t0
        calls = engines(model, path, threads)
        log(f"warm-up: one call of each engine at {size}x{size}, {threads} threads ...")
        ref = calls["pytorch"](x)
        dev = {name: float((call(x) - ref).abs().max() / ref.abs().max())
               for name, call in calls.items()}
        times = interleaved({n: functools.partial(c, x) for n, c in calls.items()}, repeat, log)
    base = statistics.median(times["pytorch"])
    rows = [{"engine": n, "s_per_img": statistics.median(t), "best": min(t),
             "ratio": statistics.median(t) / base, "max_dev": dev[n]} for n, t in times.items()]
    return {"config": config, "size": size, "threads": threads, "repeat": repeat,
            "export_s": export_s, "rows": rows, "machine": machine_line(),
            "peak_rss_mib": peak_rss_mib()}


def report(res: dict) -> str:
    rows = [[f"{res['config']}@{res['size']}", r["engine"], fmt(r["s_per_img"]), fmt(r["best"]),
             f"{r['ratio']:.2f}", f"{r['max_dev']:.2g}"] for r in res["rows"]]
    return "\n".join([
        f"machine: {res['machine']}",
        f"{res['threads']} threads for every engine; median of {res['repeat']} interleaved "
        f"rounds; ONNX export {res['export_s']:.0f} s",
        table(rows, ["model", "engine", "s/img", "best s", "x pytorch", "max dev"]),
        f"peak RSS {res['peak_rss_mib']:.0f} MiB"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="PSPNet50 at 233, 2 rounds")
    ap.add_argument("--config", help="pspnet50, pspnet101, pspnet101cs, pspnet50slim "
                    "(default pspnet50)")
    ap.add_argument("--size", type=int, help="input side (default 473; quick: 233)")
    ap.add_argument("--repeat", type=int, help="timed rounds (default 5; quick: 2)")
    ap.add_argument("--threads", type=int, help="threads of every engine (default: torch's)")
    args = ap.parse_args(argv)
    config, size, repeat = QUICK if args.quick else FULL
    res = run(args.config or config, args.size or size, args.repeat or repeat, args.threads,
              log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
