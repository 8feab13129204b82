"""CPU forward of the PSPNets: seconds per image, GMAC, GMAC/s and the matmul roofline.

    python bench/bench_forward.py                       # PSPNet50@473, PSPNet101@473 and @713
    python bench/bench_forward.py --quick               # PSPNet50@233, fewer repetitions
    python bench/bench_forward.py --threads 2 --profile # + where the fp32 time goes

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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (bf16_probe_gmacs, bf16_skip_reason, fmt, machine_line,  # noqa: E402
                    matmul_gmacs, peak_rss_mib, table, timeit)

import torch  # noqa: E402

CONFIGS = {"pspnet50": "pspnet50_ade20k", "pspnet101": "pspnet101_voc2012",
           "pspnet101cs": "pspnet101_cityscapes"}
FULL = ("pspnet50:473", "pspnet101:473", "pspnet101:713")
QUICK = ("pspnet50:233",)
QUICK_VARIANTS = ("fp32", "bf16", "fuse")
VARIANTS = ("fp32", "bf16", "channels_last", "fuse", "fuse+channels_last")


def slim_config(num_classes: int = 150):
    """PSPNet50 (ADE20K layout) with every width divided by 16: for smoke runs."""
    from psp_torch.config import PSPNetConfig
    return PSPNetConfig(num_classes=num_classes, blocks=(3, 4, 6, 3), stem_widths=(4, 4, 8),
                        mid_widths=(4, 8, 16, 32), out_widths=(16, 32, 64, 128),
                        stride_on_reduce=True, ppm_width=32, head_width=32)


def build(name: str, seed: int = 0):
    """A PSPNet of `name` (full size, or "pspnet50slim") with seeded random weights and
    BN statistics."""
    import psp_torch
    torch.manual_seed(seed)
    if name == "pspnet50slim":
        model = psp_torch.PSPNet(slim_config())
    else:
        model = getattr(psp_torch, CONFIGS.get(name, name))()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_((torch.rand(n, generator=g) - 0.5) * 0.4)
    return model.eval()


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
    ap.add_argument("--quick", action="store_true", help="PSPNet50 at 233, fp32/bf16/fuse, 1 repetition, mm 2048")
    ap.add_argument("--configs", help="comma-separated model:size (pspnet50, pspnet101, "
                    "pspnet101cs, pspnet50slim)")
    ap.add_argument("--variants", help=f"comma-separated, of {', '.join(VARIANTS)} (default all; quick: fp32,bf16,fuse)")
    ap.add_argument("--repeat", type=cli.positive_int)
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
    res = run(args.quick, specs, variants, args.repeat, threads=args.threads, bf16=args.bf16,
              log=lambda msg: print(msg, file=sys.stderr, flush=True))  # progress: stderr
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
