"""CPU forward of the PSPNets: every engine side by side, and the per-variant table.

    python bench/bench_forward.py                       # engines: PSPNet50@473, PSPNet101@713
    python bench/bench_forward.py --quick               # engines on the slim PSPNet50 at 65
    python bench/bench_forward.py --engines eager,compiled --configs pspnet50:473 --rounds 3
    python bench/bench_forward.py --table variants      # PSPNet50@473, PSPNet101@473 and @713
    python bench/bench_forward.py --table variants --threads 2 --profile

Engines table (the default): batch 1, `torch.inference_mode`, the same threads for every
engine: the faithful eager float32 forward, `psp_torch.fuse` (BN folded), the compiled
forward (`psp_torch.compiled`, torch.compile with inductor: the fast path of
``psp_torch.load(..., compile=True)`` and ``eval/run.py --compile``), ONNX Runtime on the
project's export (converter/onnx_export.py), and bf16 autocast (eager, and compiled with
``--engines ...,compiled bf16``) where the CPU does bf16 fast. One call of every engine and
of the roofline matmuls (fp32, bf16) per round, interleaved, so the shared machine's load
hits them alike; each row: median and best s/img, ratio to eager, GMAC/s and its share of
the same rounds' ``torch.mm`` rate, max |y - y64| / max |y64| against the float64 forward
and the share of pixels whose argmax is the float64 forward's. One-off costs (the first,
compiling call; the ONNX export) are printed apart. An engine that cannot be prepared or
run (e.g. no C++ compiler, an exporter failure) is its row with the one-line reason.

Variants table (``--table variants``):
Per model and size, batch 1, `torch.inference_mode`: the faithful float32 forward
and the variants bf16 autocast, channels_last, `psp_torch.fuse.fuse` (BN folded)
and fuse + channels_last, each with its max deviation from the fp32 output
(max |y - y_fp32| / max |y_fp32|). GMAC per image is counted from the operators
(`psp_torch.flops`, multiply-accumulates of convolutions and matrix products).
The roofline is the machine's own ``torch.mm`` throughput (4096x4096; bf16 rows
use a bf16 mm) measured right before and right after each row's timing; the
ratio uses the higher of the two, so a drift of the shared machine's load
between rows does not skew it.

bf16 runs only where the CPU does it fast (`common.cpu_support`: native bf16, or
oneDNN's AVX512 emulation); elsewhere torch's bf16 matmul is a scalar loop (a 4096
matmul takes minutes), so the bf16 row and its roofline are skipped and the table
says why, with a bounded bf16 matmul probe (n = 256) as the figure. ``--bf16 on``
runs it anyway (its roofline matmul bounded to n = 512).

Weights: random (seeded) with randomised BN statistics, so that folding BN is
not a no-op; the arithmetic is the same as with the released weights.
"""
from __future__ import annotations

import copy
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (CONFIGS, bf16_probe_gmacs, bf16_skip_reason, build,  # noqa: E402,F401
                    fmt, interleaved, machine_line, matmul_gmacs, onnx_session, peak_rss_mib,
                    table, timeit)

import torch  # noqa: E402

FULL = ("pspnet50:473", "pspnet101:473", "pspnet101:713")
QUICK = ("pspnet50:233",)
QUICK_VARIANTS = ("fp32", "bf16", "fuse")
VARIANTS = ("fp32", "bf16", "channels_last", "fuse", "fuse+channels_last")


def variant(model, name: str):
    """(model, call(x) -> output) of one variant."""
    from psp_torch.fuse import fuse
    m = fuse(model) if name.startswith("fuse") else model
    if "channels_last" in name:
        m = m.to(memory_format=torch.channels_last)

        def call(x):
            return m(x.contiguous(memory_format=torch.channels_last))
    elif name == "bf16":
        def call(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return m(x)
    else:
        def call(x):
            return m(x)
    return m, call


def deviation(y, ref) -> float:
    """max |y - ref| relative to max |ref| (float64)."""
    y, ref = y.double(), ref.double()
    return float((y - ref).abs().max() / ref.abs().max().clamp_min(1e-30))


BF16_BOUNDED_MM = 512      # roofline matmul side for bf16 forced on a CPU without fast bf16


def bench_model(spec: str, variants, repeat: int, warmup: int, mm_n: int, log=print,
                mm_n_bf16: int | None = None):
    """Rows for one 'model:size' spec (fp32 first: the reference of the deviations).

    Each row's roofline is the ``torch.mm`` throughput (same precision) measured right
    before and right after that row's timing, the higher of the two: the load of a
    shared machine drifts over minutes, and the ratio must compare like with like.
    """
    from psp_torch.flops import gmacs
    name, size = spec.split(":")
    size = int(size)
    model = build(name)
    macs = gmacs(model, size)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, size, size, generator=g) * 50
    rows, ref = [], None
    for v in ("fp32",) + tuple(v for v in variants if v != "fp32"):
        m, call = variant(model, v)
        dtype = torch.bfloat16 if v == "bf16" else torch.float32
        with torch.inference_mode():
            out = call(x).float()
            for _ in range(max(warmup - 1, 0)):
                call(x)
            n = (mm_n_bf16 or mm_n) if v == "bf16" else mm_n
            mm_before = matmul_gmacs(n, repeat=3, dtype=dtype)
            t = timeit(lambda: call(x), repeat=repeat, warmup=0)
            mm_after = matmul_gmacs(n, repeat=3, dtype=dtype)
        if ref is None:
            ref = out
        dev = 0.0 if v == "fp32" else deviation(out, ref)
        peak = max(mm_before, mm_after)
        rate = macs / t.best
        rows.append({"model": name, "size": size, "variant": v, "s_per_img": t.best,
                     "median_s": t.median, "gmac": macs, "gmac_s": rate, "mm_gmac_s": peak,
                     "roofline": rate / peak, "max_dev": dev})
        log(f"  {name}@{size} {v:<18} {t}  {rate:.1f} GMAC/s, mm {mm_before:.1f}/{mm_after:.1f} "
            f"({100 * rate / peak:.0f}% of mm) dev {dev:.2e}")
        del m
    return rows


# ---------------------------------------------------------------- engines, interleaved

ENGINES = ("eager", "fuse", "compiled", "onnxruntime", "bf16", "compiled bf16")
DEFAULT_ENGINES = ("eager", "fuse", "compiled", "onnxruntime", "bf16")
ENGINE_SPECS = ("pspnet50:473", "pspnet101:713")
QUICK_ENGINE_SPECS = ("pspnet50slim:65",)
BF16_ENGINES = ("bf16", "compiled bf16")


def float64_reference(model, x):
    """The float64 forward of a copy of `model` (every weight and the input widened)."""
    m64 = copy.deepcopy(model).double()
    with torch.inference_mode():
        return m64(x.double())


def _onnx_engine(model, folder: Path, threads: int) -> tuple:
    """(call, seconds of the export) of the project's ONNX export run by the session
    eval/run.py --onnx ships (`common.onnx_session`: CPU provider, `threads` intra-op threads,
    ONNX Runtime's default graph optimisations)."""
    from pspnet_caffe.converter.onnx_export import export_onnx
    t0 = time.perf_counter()
    path = export_onnx(model, folder / "model.onnx")
    export_s = time.perf_counter() - t0
    return onnx_session(path, threads), export_s


def make_engine(name: str, model, folder: Path, threads: int) -> tuple:
    """(call(x) -> float32 output, {what: seconds} of its one-off preparation) of an engine.

    eager: the faithful float32 forward; fuse: `psp_torch.fuse` (BN folded); compiled:
    `psp_torch.compiled.compile_model` on a copy (the first call compiles: timed as
    "compile"); onnxruntime: the project's export; bf16 / compiled bf16: the same under
    CPU autocast to bfloat16 (a speed option, its deviation is its price)."""
    from psp_torch.compiled import compile_model
    from psp_torch.fuse import fuse
    setup = {}
    if name == "eager":
        call = model
    elif name == "fuse":
        call = fuse(model)
    elif name in ("compiled", "compiled bf16"):
        call = compile_model(copy.deepcopy(model))
    elif name == "onnxruntime":
        call, setup["ONNX export"] = _onnx_engine(model, folder, threads)
    elif name == "bf16":
        call = model
    else:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}")
    if name in BF16_ENGINES:
        inner = call

        def call(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return inner(x).float()
    return call, setup


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:160]


def engine_rows(spec: str, engines, rounds: int, mm_n: int, log=print,
                mm_n_bf16: int | None = None) -> tuple[list, dict]:
    """Rows of one 'model:size' for `engines`, timed in interleaved rounds together with the
    roofline matmuls (fp32, and bf16 when a bf16 engine runs), and {what: seconds} of the
    one-off preparations (compilations, the ONNX export).

    Each row: median and best seconds per image, ratio to eager, GMAC/s over the median and
    its share of the same rounds' median ``torch.mm`` rate (same precision), max |y - y64| /
    max |y64| against the float64 forward and the share of pixels whose argmax is the
    float64 forward's. An engine that cannot be prepared or run is a row with its reason."""
    from psp_torch.flops import gmacs
    name, size = spec.split(":")
    size = int(size)
    threads = torch.get_num_threads()
    model = build(name)
    macs = gmacs(model, size)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1)) * 50
    log(f"{spec}: float64 reference forward ...")
    ref = float64_reference(model, x)
    scale = float(ref.abs().max())
    ref_arg = ref.argmax(1)
    calls, failed, setup, dev, agree = {}, {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for engine in engines:
            log(f"{spec}: preparing {engine} ...")
            try:
                call, prep = make_engine(engine, model, Path(tmp), threads)
                t0 = time.perf_counter()
                y = call(x).double()         # first call: compiles where it compiles
                first = time.perf_counter() - t0
            except Exception as exc:         # one engine failing is its row, not the bench's end
                failed[engine] = _one_line(exc)
                log(f"{spec}: {engine} failed: {failed[engine]}")
                continue
            if engine.startswith("compiled"):
                prep["compile (first call)"] = first
            setup.update({f"{engine}: {k}": v for k, v in prep.items()})
            dev[engine] = float((y - ref).abs().max()) / scale
            agree[engine] = float((y.argmax(1) == ref_arg).double().mean())
            calls[engine] = functools.partial(call, x)
        mm = {"mm fp32": _mm_call(mm_n, torch.float32)}
        if any(e in calls for e in BF16_ENGINES):
            mm["mm bf16"] = _mm_call(mm_n_bf16 or mm_n, torch.bfloat16)
        for c in mm.values():
            c()                              # warm
        times = interleaved({**calls, **mm}, rounds, log)
    sides = {"mm fp32": mm_n, "mm bf16": mm_n_bf16 or mm_n}
    mm_rate = {k: sides[k] ** 3 / statistics.median(times[k]) / 1e9 for k in mm}
    base = statistics.median(times["eager"]) if "eager" in times else None
    rows = []
    for engine in engines:
        row = {"model": name, "size": size, "engine": engine, "threads": threads, "gmac": macs}
        if engine in failed:
            rows.append({**row, "error": failed[engine]})
            continue
        t = times[engine]
        med = statistics.median(t)
        roof = mm_rate["mm bf16" if engine in BF16_ENGINES else "mm fp32"]
        rows.append({**row, "s_per_img": med, "best": min(t), "rounds": len(t),
                     "x_eager": med / base if base else None, "gmac_s": macs / med,
                     "mm_gmac_s": roof, "roofline": macs / med / roof,
                     "max_dev": dev[engine], "argmax": agree[engine]})
    return rows, {"setup": setup, "mm": mm_rate}


def _mm_call(n: int, dtype):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    return lambda: torch.mm(a, b, out=out)


def run_engines(quick: bool = False, specs=None, engines=None, rounds=None, threads=None,
                mm_n=None, log=print, bf16: str = "auto") -> dict:
    """The engines table: every engine on every spec, interleaved (see engine_rows).

    Quick: the slim PSPNet50 at 65, 2 rounds, matmul 1024 (rows, not figures). bf16 engines
    run where the CPU does bf16 fast (`bf16` "auto"), else their row says why."""
    if threads:
        torch.set_num_threads(threads)
    specs = specs or (QUICK_ENGINE_SPECS if quick else ENGINE_SPECS)
    engines = tuple(engines or DEFAULT_ENGINES)
    rounds = rounds or (2 if quick else 5)
    n = mm_n or (1024 if quick else 4096)
    why = bf16_skip_reason()
    skipped = {}
    if bf16 == "off" or (bf16 == "auto" and why):
        skipped = {e: "--bf16 off" if bf16 == "off" else why for e in engines if e in BF16_ENGINES}
        engines = tuple(e for e in engines if e not in skipped)
    rows, setup, mm = [], {}, {}
    for spec in specs:
        r, extra = engine_rows(spec, engines, rounds, n, log,
                               mm_n_bf16=min(n, BF16_BOUNDED_MM) if why else None)
        rows += r
        setup[spec], mm[spec] = extra["setup"], extra["mm"]
        for e, reason in skipped.items():
            rows.append({"model": spec.split(":")[0], "size": int(spec.split(":")[1]),
                         "engine": e, "error": f"skipped: {reason}"})
    return {"machine": machine_line(), "threads": torch.get_num_threads(), "rounds": rounds,
            "mm_n": n, "rows": rows, "setup": setup, "mm": mm, "specs": specs,
            "peak_rss_mib": peak_rss_mib()}


def report_engines(res: dict) -> str:
    head = ["model", "engine", "s/img", "best s", "x eager", "GMAC/s", "of mm", "max dev f64",
            "argmax = f64"]
    rows = []
    for r in res["rows"]:
        label = f"{r['model']}@{r['size']}"
        if "error" in r:
            rows.append([label, r["engine"], r["error"], "", "", "", "", "", ""])
            continue
        rows.append([label, r["engine"], fmt(r["s_per_img"]), fmt(r["best"]),
                     "-" if r["x_eager"] is None else f"{r['x_eager']:.2f}", fmt(r["gmac_s"]),
                     f"{100 * r['roofline']:.0f}%", f"{r['max_dev']:.1e}",
                     f"{100 * r['argmax']:.3f}%"])
    mm = "; ".join(f"{spec}: " + ", ".join(f"{k} {v:.1f} GMAC/s" for k, v in m.items())
                   for spec, m in res["mm"].items())
    setup = "; ".join(f"{spec}: " + ", ".join(f"{k} {v:.0f} s" for k, v in s.items())
                      for spec, s in res["setup"].items() if s)
    return "\n".join([
        f"machine: {res['machine']}",
        f"{res['threads']} threads for every engine; median of {res['rounds']} interleaved "
        f"rounds (one call of each engine and of each roofline matmul per round); max dev = "
        f"max |y - y_f64| / max |y_f64| against the float64 forward",
        f"roofline: torch.mm {res['mm_n']}x{res['mm_n']} in the same rounds: {mm}",
        table(rows, head),
        f"one-off, not in s/img: {setup or 'none'}",
        f"peak RSS {res['peak_rss_mib']:.0f} MiB"])


def profile(spec: str, top: int = 15) -> str:
    """torch.profiler table of one fp32 forward, by self CPU time."""
    from torch.profiler import ProfilerActivity, profile as prof
    name, size = spec.split(":")
    model = build(name)
    x = torch.randn(1, 3, int(size), int(size)) * 50
    with torch.inference_mode():
        model(x)
        with prof(activities=[ProfilerActivity.CPU]) as p:
            model(x)
    return p.key_averages().table(sort_by="self_cpu_time_total", row_limit=top)


# Representative convolutions of PSPNet at 473 (feature 60x60 after stage 2): name, cin,
# cout, kernel, dilation, input side.
CONVS = (("conv5_4 3x3 4096->512", 4096, 512, 3, 1, 60),
         ("conv5_x 3x3 d4 512->512", 512, 512, 3, 4, 60),
         ("conv4_x 3x3 d2 256->256", 256, 256, 3, 2, 60),
         ("conv5_x 1x1 512->2048", 512, 2048, 1, 1, 60),
         ("conv4_x 1x1 1024->256", 1024, 256, 1, 1, 60),
         ("conv2_x 3x3 64->64", 64, 64, 3, 1, 119))


def conv_rows(repeat: int = 3, channels_last: bool = False) -> list:
    """GMAC/s of single convolutions (same shapes as the model's), for the profile."""
    rows = []
    for name, cin, cout, k, d, side in CONVS:
        conv = torch.nn.Conv2d(cin, cout, k, padding=d * (k - 1) // 2, dilation=d, bias=False)
        x = torch.randn(1, cin, side, side)
        if channels_last:
            conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(
                memory_format=torch.channels_last)
        macs = side * side * cout * cin * k * k / 1e9
        with torch.inference_mode():
            t = timeit(lambda: conv(x), repeat=repeat, warmup=1)
        rows.append((name, macs, macs / t.best))
    return rows


def run(quick: bool = False, specs=None, variants=None, repeat=None, warmup=1,
        threads=None, mm_n=None, log=print, bf16: str = "auto") -> dict:
    """Measure; returns {"machine", "threads", "roof", "rows", "skipped"}.

    Quick: PSPNet50 at 233 (side 8k+1, a quarter of the 473 MACs), fp32, bf16 and fuse,
    one timed forward each after one untimed, matmul 2048. `bf16`: "auto" (run it where
    the CPU does bf16 fast, else skip it and say why), "on" (run it anyway, roofline
    matmul bounded to BF16_BOUNDED_MM), "off".
    """
    variants = variants or (QUICK_VARIANTS if quick else VARIANTS)
    if threads:
        torch.set_num_threads(threads)
    specs = specs or (QUICK if quick else FULL)
    repeat = repeat or (1 if quick else 3)
    n = mm_n or (2048 if quick else 4096)
    skipped, n_bf16 = {}, None
    why = bf16_skip_reason()
    if "bf16" in variants and (bf16 == "off" or (bf16 == "auto" and why)):
        probe = bf16_probe_gmacs()
        skipped["bf16"] = ("--bf16 off" if bf16 == "off" else why) + \
            f"; bf16 mm at 256: {probe:.2f} GMAC/s"
        variants = tuple(v for v in variants if v != "bf16")
        log(f"bf16 skipped: {skipped['bf16']}")
    elif "bf16" in variants and why:
        n_bf16 = min(n, BF16_BOUNDED_MM)
    dtypes = {"fp32": torch.float32}
    if "bf16" in variants:
        dtypes["bf16"] = torch.bfloat16

    def roofs():
        return {k: matmul_gmacs((n_bf16 or n) if k == "bf16" else n, dtype=d)
                for k, d in dtypes.items()}
    roof_before = roofs()
    log(f"matmul {n}: " + ", ".join(f"{k} {v:.1f} GMAC/s" for k, v in roof_before.items()))
    rows = []
    for spec in specs:
        rows += bench_model(spec, variants, repeat, warmup, n, log, mm_n_bf16=n_bf16)
    roof_after = roofs()
    roof = {k: max(roof_before[k], roof_after[k]) for k in roof_before}
    return {"machine": machine_line(), "threads": torch.get_num_threads(), "roof": roof,
            "roof_before": roof_before, "roof_after": roof_after, "rows": rows,
            "skipped": skipped, "mm_n": n, "mm_n_bf16": n_bf16, "specs": specs,
            "peak_rss_mib": peak_rss_mib()}


def report(res: dict) -> str:
    rows = [[r["model"], r["size"], r["variant"], fmt(r["s_per_img"]), fmt(r["gmac"], 4),
             fmt(r["gmac_s"]), fmt(r["mm_gmac_s"]), f"{100 * r['roofline']:.0f}%",
             "-" if r["variant"] == "fp32" else f"{r['max_dev']:.1e}"] for r in res["rows"]]
    head = ["model", "size", "variant", "s/img", "GMAC/img", "GMAC/s", "mm GMAC/s", "of mm",
            "max dev"]
    for v, why in res.get("skipped", {}).items():
        for spec in res.get("specs", ()):
            name, size = spec.split(":")
            rows.append([name, size, v, "skipped", "-", "-", "-", "-", "-"])
    rb, ra = res["roof_before"], res["roof_after"]
    mm = ", ".join(f"{k} {rb[k]:.1f} / {ra[k]:.1f} GMAC/s" for k in rb)
    bounded = (f"; bf16 roofline bounded to a {res['mm_n_bf16']} matmul (no fast bf16 here)"
               if res.get("mm_n_bf16") else "")
    notes = [f"{v} skipped: {why}" for v, why in res.get("skipped", {}).items()]
    return "\n".join([
        f"machine: {res['machine']}",
        f"matmul: {mm} (before / after all models){bounded}; each row's 'mm' is the best of "
        f"the matmuls just before and after it, 'of mm' the row's GMAC/s over it",
        table(rows, head), *notes,
        f"peak RSS {res['peak_rss_mib']:.0f} MiB"])


def main(argv=None) -> int:
    from caffe_proto import cli
    ap = cli.parser(None, __doc__)
    ap.add_argument("--table", choices=("engines", "variants"), default="engines",
                    help="engines: eager / fuse / compiled / ONNX Runtime / bf16 interleaved, "
                    "deviation from float64; variants: the per-variant table (channels_last ...)")
    ap.add_argument("--quick", action="store_true", help="engines: slim PSPNet50 at 65, 2 rounds, "
                    "mm 1024; variants: PSPNet50 at 233, fp32/bf16/fuse, 1 repetition, mm 2048")
    ap.add_argument("--configs", help="comma-separated model:size (pspnet50, pspnet101, "
                    "pspnet101cs, pspnet50slim; default engines: "
                    f"{','.join(ENGINE_SPECS)}; variants: {','.join(FULL)})")
    ap.add_argument("--engines", help=f"comma-separated, of {', '.join(ENGINES)} "
                    f"(default {','.join(DEFAULT_ENGINES)})")
    ap.add_argument("--rounds", type=cli.positive_int, help="engines: interleaved rounds "
                    "(default 5; quick: 2)")
    ap.add_argument("--variants", help=f"comma-separated, of {', '.join(VARIANTS)} (default all; quick: fp32,bf16,fuse)")
    ap.add_argument("--repeat", type=cli.positive_int, help="variants: timed calls per row")
    ap.add_argument("--threads", type=cli.positive_int, help="torch threads (default: torch's, = cores)")
    ap.add_argument("--bf16", choices=("auto", "on", "off"), default="auto",
                    help="auto: only where this CPU does bf16 fast (else skipped, with why); "
                    "on: anyway, roofline matmul bounded to 512")
    ap.add_argument("--profile", action="store_true", help="profile one fp32 forward of the first "
                    "config, and time its typical convolutions alone")
    args = ap.parse_args(argv)
    specs = tuple(args.configs.split(",")) if args.configs else None
    variants = tuple(args.variants.split(",")) if args.variants else None
    unknown = set(variants or ()) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    engines = tuple(args.engines.split(",")) if args.engines else None
    unknown = set(engines or ()) - set(ENGINES)
    if unknown:
        ap.error(f"unknown engines {sorted(unknown)}; known: {', '.join(ENGINES)}")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731  (progress: stderr)
    if args.table == "engines":
        res = run_engines(args.quick, specs, engines, args.rounds, threads=args.threads,
                          bf16=args.bf16, log=log)
        print(report_engines(res))
    else:
        res = run(args.quick, specs, variants, args.repeat, threads=args.threads, bf16=args.bf16,
                  log=log)
        print(report(res))
    if args.profile:
        print(profile((specs or (QUICK if args.quick else FULL))[0]))
        peak = matmul_gmacs(2048 if args.quick else 4096)
        rows = [[n, fmt(m), fmt(r), f"{100 * r / peak:.0f}%"] for n, m, r in conv_rows()]
        print(f"single convolutions (fp32, contiguous), torch.mm {peak:.1f} GMAC/s:")
        print(table(rows, ["convolution", "GMAC", "GMAC/s", "of mm"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
