"""All the benchmarks that fit on this machine, one table.

    python bench/run.py            # full: minutes of CPU (the forward bench alone ~10 min)
    python bench/run.py --quick    # under two minutes on a 2-core machine

Full mode runs each bench with its own defaults. Quick mode measures less, the
same way: forward = PSPNet50 at 233 (fp32, bf16, fuse; one timed call; matmul
2048); parsing and conversion = one repetition each (their 263 MB input files
are made once and cached in /tmp; the first quick run pays for making them);
evaluation = its --quick when it has one; soak = 20 images with one kill; GPU =
only where CUDA is available. A bench module that is missing or fails shows up
as one line in the table with the reason, and the others still run.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine_line, run_child, table  # noqa: E402

BENCH = ROOT / "bench"
# lines of a child bench's output that carry its figures against a baseline
HEADLINE = re.compile(r"(?i)(speed-up|ratio|/ ?cp|/ ?protobuf|/ ?floor|x file|of mm|target|"
                      r"share|outside the net|img/s|s/img|seconds per image|identical|PASS|FAIL|"
                      r"peak RSS|\bvs\b)")


def child_bench(name: str, script: str, args: list, timeout: float) -> list:
    """Rows [bench, figure, status] from a bench run as a child process."""
    path = BENCH / script
    if not path.exists():
        return [[name, "-", f"skipped: bench/{script} is not in this tree"]]
    r = run_child([sys.executable, str(path), *args], timeout=timeout, cwd=str(ROOT))
    if r.returncode != 0:
        why = "timed out" if r.returncode in (-9, 137) else f"exit {r.returncode}"
        last = (r.stderr.strip().splitlines() or ["(no message)"])[-1][:120]
        return [[name, "-", f"FAILED ({why}, {r.wall_s:.0f} s): {last}"]]
    lines = [ln.strip() for ln in r.stdout.splitlines() if ln.strip()]
    figures = [ln for ln in lines if HEADLINE.search(ln) and not set(ln) <= set("|- ")]
    figures = figures or lines[-3:]
    rows = [[name, f.replace("|", "/"), ""] for f in figures[:12]]
    rows[0][2] = f"ok ({r.wall_s:.0f} s, peak RSS {r.peak_rss_mib:.0f} MiB)"
    return rows


def forward_rows(quick: bool) -> list:
    try:
        import bench_forward
        res = bench_forward.run(quick=quick, log=lambda *a: None)
    except Exception as exc:  # keep the other benches going
        return [["forward (CPU)", "-", f"FAILED: {type(exc).__name__}: {exc}"]]
    rows = []
    roof = res["roof"]
    rows.append(["forward (CPU)", f"torch.mm roofline fp32 {roof['fp32']:.1f} GMAC/s, bf16 "
                 f"{roof['bf16']:.1f} GMAC/s, {res['threads']} threads", "ok"])
    for r in res["rows"]:
        dev = "" if r["variant"] == "fp32" else f", max dev {r['max_dev']:.1e}"
        rows.append(["forward (CPU)", f"{r['model']}@{r['size']} {r['variant']}: "
                     f"{r['s_per_img']:.2f} s/img, {r['gmac']:.1f} GMAC, {r['gmac_s']:.1f} GMAC/s "
                     f"= {100 * r['roofline']:.0f}% of mm ({r['mm_gmac_s']:.1f}){dev}", ""])
    return rows


def gpu_rows(quick: bool) -> list:
    import torch
    if not torch.cuda.is_available():
        return [["forward (GPU)", "-", "skipped: no CUDA device on this machine"]]
    args = ["--batches", "1,8", "--no-compile", "--repeat", "3"] if quick else []
    return child_bench("forward (GPU)", "bench_gpu.py", args, timeout=120 if quick else 3600)


def eval_args(quick: bool) -> list:
    path = BENCH / "bench_eval.py"
    if quick and path.exists() and "--quick" in path.read_text():
        return ["--quick"]
    return []


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, small settings")
    ap.add_argument("--only", help="comma-separated subset: parse,convert,forward,gpu,eval,soak")
    args = ap.parse_args(argv)
    q = args.quick
    t = 45 if q else 3600
    steps = {
        "parse": lambda: child_bench("parsing", "bench_parse.py", ["--repeat", "1"] if q else [], t),
        "convert": lambda: child_bench("conversion", "bench_convert.py",
                                       ["--repeat", "1"] if q else [], t),
        "forward": lambda: forward_rows(q),
        "gpu": lambda: gpu_rows(q),
        "eval": lambda: child_bench("evaluation", "bench_eval.py", eval_args(q), t),
        "soak": lambda: child_bench("eval soak", "soak_eval.py",
                                    ["--images", "20", "--kills", "1"] if q else [], t),
    }
    chosen = args.only.split(",") if args.only else list(steps)
    unknown = set(chosen) - set(steps)
    if unknown:
        ap.error(f"unknown benches {sorted(unknown)}; known: {', '.join(steps)}")
    t0 = time.perf_counter()
    rows = []
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += steps[name]()
    print(f"machine: {machine_line()}")
    print(f"mode: {'quick' if q else 'full'}, {time.perf_counter() - t0:.0f} s in all")
    print(table(rows, ["bench", "figure", "status"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
