"""All the benchmarks that fit on this machine, one table.

    python bench/run.py            # full: minutes of CPU (the forward bench alone ~10 min)
    python bench/run.py --quick    # minutes on a 2-core machine (compiling the slim net)

Every bench runs as a child process (its peak RSS is its own). Full mode runs
each with its own defaults. Quick mode measures less, the
same way: forward = the engines table on the slim PSPNet50 at 65 (eager, fuse, compiled,
ONNX Runtime, bf16; 2 rounds; matmul 1024: the compilation and the export take minutes on
a loaded 2-core machine); parsing and conversion = one repetition each (their 263 MB input files
are made once and cached in /tmp; the first quick run pays for making them);
evaluation = its --quick when it has one; soak = 20 images with one kill; training = slim
nets at crop 97, one thread; ONNX Runtime = PSPNet50 at 233, 2 rounds (its export
alone takes most of a minute; only with --only onnx: the forward bench has its row); GPU = only where CUDA is available. A bench module that
is missing or fails shows up as one line in the table with the reason, and the others
still run.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine_line, run_child, table  # noqa: E402

BENCH = ROOT / "bench"
MAX_ROWS = 24
SKIP_STATUS = 2   # bench_gpu.py's status without a CUDA device (its message says so)


def child_bench(name: str, script: str, args: list, timeout: float) -> list:
    """Rows [bench, figure, status] from a bench run as a child process: its stdout
    lines (the bench's own table and ratios; progress goes to its stderr).

    Every bench is a child of this small process, so each peak RSS (wait4) is the
    bench's own: on Linux a child's ru_maxrss starts from its parent's RSS at fork.
    """
    path = BENCH / script
    if not path.exists():
        return [[name, "-", f"skipped: bench/{script} is not in this tree"]]
    r = run_child([sys.executable, str(path), *args], timeout=timeout, cwd=str(ROOT))
    last = (r.stderr.strip().splitlines() or ["(no message)"])[-1][:120]
    if r.returncode == SKIP_STATUS and script == "bench_gpu.py":
        return [[name, "-", f"skipped: {last}"]]
    if r.returncode != 0:
        why = "timed out" if r.returncode in (-9, 137) else f"exit {r.returncode}"
        return [[name, "-", f"FAILED ({why}, {r.wall_s:.0f} s): {last}"]]
    lines = [ln.strip() for ln in r.stdout.splitlines()
             if ln.strip() and not set(ln.strip()) <= set("|-: ")]
    rows = [[name, ln.strip("| ").replace(" | ", " / "), ""] for ln in lines[:MAX_ROWS]]
    if len(lines) > MAX_ROWS:
        rows.append([name, f"... {len(lines) - MAX_ROWS} more lines (run bench/{script})", ""])
    rows = rows or [[name, "(no output)", ""]]
    rows[0][2] = f"ok ({r.wall_s:.0f} s, peak RSS {r.peak_rss_mib:.0f} MiB)"
    return rows


def eval_args(quick: bool) -> list:
    path = BENCH / "bench_eval.py"
    if quick and path.exists() and "--quick" in path.read_text():
        return ["--quick"]
    return []


def main(argv=None) -> int:
    from caffe_proto import cli
    ap = cli.parser(None, __doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, small settings")
    ap.add_argument("--only", help="comma-separated subset: parse,convert,forward,gpu,eval,soak,"
                    "train,onnx")
    args = ap.parse_args(argv)
    q = args.quick
    t = 60 if q else 3600
    steps = {
        "parse": lambda: child_bench("parsing", "bench_parse.py", ["--repeat", "1"] if q else [], t),
        "convert": lambda: child_bench("conversion", "bench_convert.py",
                                       ["--repeat", "1"] if q else [], t),
        "forward": lambda: child_bench("forward (CPU)", "bench_forward.py",
                                       ["--quick"] if q else [], 900 if q else 7200),
        "gpu": lambda: child_bench("forward (GPU)", "bench_gpu.py",
                                   ["--batches", "1,8", "--no-compile", "--repeat", "3"] if q
                                   else [], 120 if q else 3600),
        "eval": lambda: child_bench("evaluation", "bench_eval.py", eval_args(q), t),
        "soak": lambda: child_bench("eval soak", "soak_eval.py",
                                    ["--images", "20", "--kills", "1"] if q else [], t),
        "train": lambda: child_bench("training", "bench_train.py",
                                     ["--quick", "--threads", "1"] if q else [],
                                     600 if q else 7200),
        "onnx": lambda: child_bench("ONNX Runtime (CPU)", "bench_onnx.py",
                                    ["--quick"] if q else [], 300 if q else 3600),
    }
    # the forward bench's engines table has the ONNX Runtime row: bench_onnx only when asked
    chosen = args.only.split(",") if args.only else [k for k in steps if k != "onnx"]
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
