"""Shared helpers of the benchmarks: timing, memory, the machine, the matmul roofline, tables,
the benchmarked models and the engines' shared pieces (interleaved rounds, the ONNX Runtime
session eval/run.py --onnx ships).

Every bench prints ratios against a baseline measured in the same run: these machines
are shared and noisy, so absolute times drift while ratios hold.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ---------------------------------------------------------------- memory

def rss_mib() -> float:
    """Current resident set size of this process (MiB), from /proc/self/statm."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB; ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- timing

@dataclass
class Timing:
    """Seconds of `repeat` timed calls (after `warmup` untimed ones)."""
    times: list

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def __str__(self) -> str:
        return f"best {self.best:.3f} s, median {self.median:.3f} s of {len(self.times)}"


def timeit(fn, repeat: int = 3, warmup: int = 1, sync=None) -> Timing:
    """Call `fn` `warmup` times, then time `repeat` calls (`sync()` before each clock read)."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return Timing(times)


@dataclass
class ChildRun:
    """A command run as a child process: wall time, its peak RSS (wait4), status, output."""
    wall_s: float
    peak_rss_mib: float
    returncode: int
    stdout: str
    stderr: str


def run_child(cmd, env=None, cwd=None, timeout=None) -> ChildRun:
    """Run `cmd` (list) to completion; its own peak RSS from ``os.wait4``.

    Output goes to temporary files (no pipe to drain while waiting); past `timeout`
    seconds the child is killed (returncode -9).
    """
    import tempfile
    import threading
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True, env=env, cwd=cwd)
        timer = threading.Timer(timeout, proc.kill) if timeout else None
        if timer:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer:
                timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        return ChildRun(wall, usage.ru_maxrss / 1024, proc.returncode, fo.read(), fe.read())


# ---------------------------------------------------------------- the machine

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_support() -> dict:
    """What this CPU does fast, as torch sees it.

    capability: torch's dispatch level (``torch.backends.cpu.get_cpu_capability()``:
    DEFAULT, AVX2, AVX512, ...); native_bf16: the CPU flags with bf16 arithmetic in
    hardware; bf16_fast: oneDNN runs bf16 matmuls and convolutions (native bf16, or
    emulated with AVX512). Without it, ``torch.mm`` in bf16 is a scalar single-threaded
    loop (~50x below fp32: minutes for one 4096 matmul), so the benches skip bf16 there.
    """
    import torch
    flags = cpu_flags()
    try:
        fast = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        fast = False
    return {"capability": torch.backends.cpu.get_cpu_capability(),
            "native_bf16": [f for f in NATIVE_BF16_FLAGS if f in flags], "bf16_fast": fast}


def bf16_skip_reason(support: dict | None = None) -> str | None:
    """None where bf16 runs fast on this CPU, else why the benches skip it."""
    support = support or cpu_support()
    if support["bf16_fast"]:
        return None
    return (f"no fast bf16 on this CPU (torch capability {support['capability']}, no "
            f"{'/'.join(NATIVE_BF16_FLAGS)}, oneDNN bf16 unsupported): bf16 matmul is a "
            f"scalar fallback")


def bf16_probe_gmacs(n: int = 256) -> float:
    """bf16 ``torch.mm`` at a bounded size (n^3 MACs: 17 M at 256, well under a second even
    on the scalar fallback): the figure behind a skip."""
    import torch
    return matmul_gmacs(n, repeat=1, dtype=torch.bfloat16)


def machine() -> dict:
    """CPU model, cores, the SIMD features that matter, torch's CPU capability, torch
    version and threads."""
    import torch
    flags = cpu_flags()
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
            if f in flags]
    support = cpu_support()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "simd": " ".join(simd),
            "capability": support["capability"],
            "bf16": "fast" if support["bf16_fast"] else "slow (skipped)",
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}


def machine_line() -> str:
    m = machine()
    return (f"{m['cpu']}, {m['cores']} cores ({m['simd']}; torch CPU capability "
            f"{m['capability']}, bf16 {m['bf16']}), torch {m['torch']}, "
            f"{m['threads']} threads, Python {m['python']}")


# ---------------------------------------------------------------- roofline

def matmul_gmacs(n: int = 4096, repeat: int = 5, dtype=None, device="cpu") -> float:
    """The machine's own dense matmul throughput: best GMAC/s of ``torch.mm`` of n x n."""
    import torch
    dtype = dtype or torch.float32
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else None
    t = timeit(lambda: torch.mm(a, b, out=out), repeat=repeat, warmup=1, sync=sync)
    return n ** 3 / t.best / 1e9


# ---------------------------------------------------------------- tables

def table(rows: list, headers: list) -> str:
    """A Markdown table (numbers already formatted as strings)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def fmt(x, digits: int = 3) -> str:
    """A number with `digits` significant digits (or the string as is)."""
    if isinstance(x, str):
        return x
    if x is None or x != x:
        return "-"
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:.0f}"


# ---------------------------------------------------------------- the models benchmarked

CONFIGS = {"pspnet50": "pspnet50_ade20k", "pspnet101": "pspnet101_voc2012",
           "pspnet101cs": "pspnet101_cityscapes"}


def slim_config(num_classes: int = 150):
    """PSPNet50 (ADE20K layout) with every width divided by 16: for smoke runs."""
    from psp_torch.config import PSPNetConfig
    return PSPNetConfig(num_classes=num_classes, blocks=(3, 4, 6, 3), stem_widths=(4, 4, 8),
                        mid_widths=(4, 8, 16, 32), out_widths=(16, 32, 64, 128),
                        stride_on_reduce=True, ppm_width=32, head_width=32)


def build(name: str, seed: int = 0):
    """A PSPNet of `name` (a key of CONFIGS, a preset name, or "pspnet50slim") with seeded
    random weights and plausible BN statistics (converter/synthetic.py's `random_pspnet`,
    the project's one such builder), in eval mode."""
    from psp_torch.config import preset_config
    from psp_torch.metadata import preset_meta
    from pspnet_caffe.converter.synthetic import random_pspnet
    if name == "pspnet50slim":
        return random_pspnet(slim_config(), seed)
    preset = CONFIGS.get(name, name)
    return random_pspnet(preset_config(preset), seed, preset_meta(preset))


# ---------------------------------------------------------------- engines

def interleaved(calls: dict, rounds: int, log=print) -> dict:
    """{name: [seconds per call]}: `rounds` rounds, one call of every callable per round, so a
    change of the shared machine's load hits them alike."""
    times = {name: [] for name in calls}
    for r in range(rounds):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n} {t[-1]:.3g}" for n, t in times.items()))
    return times


def onnx_session(onnx_path, threads: int):
    """The ONNX Runtime session `eval/run.py --onnx` ships (eval/onnx_model.py's `OnnxModel`,
    built by the same code, `threads` intra-op threads): called with a torch tensor, it
    returns the scores as a torch tensor, numpy conversions included, as in the evaluation."""
    from pspnet_caffe.eval.onnx_model import OnnxModel
    return OnnxModel(onnx_path, threads=threads)
