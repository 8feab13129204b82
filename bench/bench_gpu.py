"""Forward on a GPU: images/s by batch, precision, memory format and torch.compile.

    python bench/bench_gpu.py                         # PSPNet50 at 473 on cuda
    python bench/bench_gpu.py --config pspnet101:713 --batches 1,8 --no-compile
    python bench/bench_gpu.py --device cpu --size 65 --batches 1 --precisions fp32,bf16 \\
        --no-compile --repeat 1                       # smoke check without a GPU

For each batch (1, 8, 16), precision (fp32; tf32 = fp32 tensors with TF32 matmuls
and convolutions; bf16 and fp16 autocast), memory format (contiguous,
channels_last) and with/without ``torch.compile``: images/s (best of `repeat`
timed calls after warm-up, synchronised), the max deviation from the fp32
output of the same batch (max |y - y_fp32| / max |y_fp32|), and achieved
TFLOP/s (2 x the GMAC of `psp_torch.flops`) as a share of two ceilings: the
GPU's dense datasheet peak for that precision (when the GPU is known) and a
large ``torch.mm`` measured in the same run. Nothing in tests or CI needs a GPU.
"""
from __future__ import annotations

import contextlib
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import bf16_skip_reason, fmt, matmul_gmacs, table, timeit  # noqa: E402

import torch  # noqa: E402

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
# Dense (no sparsity) datasheet peaks in TFLOP/s: fp32, tf32, bf16, fp16 tensor cores.
DENSE_PEAK = {
    "H100 SXM": {"fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989},
    "H100 PCIe": {"fp32": 51, "tf32": 378, "bf16": 756, "fp16": 756},
    "H200": {"fp32": 67, "tf32": 494, "bf16": 989, "fp16": 989},
    "A100": {"fp32": 19.5, "tf32": 156, "bf16": 312, "fp16": 312},
    "L4": {"fp32": 30, "tf32": 60, "bf16": 121, "fp16": 121},
}


def dense_peak(device_name: str) -> dict | None:
    name = device_name.upper()
    if "H100" in name:
        return DENSE_PEAK["H100 PCIe" if "PCIE" in name else "H100 SXM"]
    for key, peak in DENSE_PEAK.items():
        if key.split()[0] in name:
            return peak
    return None


@contextlib.contextmanager
def precision(mode: str, device: str):
    """fp32 strict, tf32, or bf16/fp16 autocast."""
    cuda = device.startswith("cuda")
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    try:
        if mode in ("bf16", "fp16"):
            dtype = torch.bfloat16 if mode == "bf16" else torch.float16
            with torch.autocast("cuda" if cuda else "cpu", dtype=dtype):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def mm_tflops(mode: str, device: str, n: int) -> float:
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode, torch.float32)
    with precision("tf32" if mode == "tf32" else "fp32", device):
        return 2 * matmul_gmacs(n, repeat=5, dtype=dtype, device=device) / 1e3


def run(config="pspnet50:473", size=None, device="cuda", batches=(1, 8, 16),
        precisions=PRECISIONS, channels_last=(False, True), compile_modes=(False, True),
        repeat=10, warmup=3, mm_n=8192, log=print) -> dict:
    from common import build
    from psp_torch.flops import gmacs
    name, crop = config.split(":")
    size = size or int(crop)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    gpu = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    peak = dense_peak(gpu)
    base = build(name).to(device)
    gmac = gmacs(base, size)
    # On a CPU without fast bf16 (smoke runs), half-precision matmuls are a scalar loop:
    # their roofline is measured on a bounded matmul instead (common.cpu_support).
    slow_half = None if device.startswith("cuda") else bf16_skip_reason()
    mm_side = {p: min(mm_n, 512) if slow_half and p in ("bf16", "fp16") else mm_n
               for p in precisions}
    mm = {p: mm_tflops(p, device, mm_side[p]) for p in precisions}
    log(f"{gpu}: torch.mm " + ", ".join(f"{p} {v:.1f} ({mm_side[p]})" for p, v in mm.items())
        + " TFLOP/s" + (f"; half precision bounded: {slow_half}" if slow_half else ""))
    rows = []
    g = torch.Generator().manual_seed(1)
    for b in batches:
        x = (torch.randn(b, 3, size, size, generator=g) * 50).to(device)
        with torch.inference_mode(), precision("fp32", device):
            ref = base(x).float()
        for cl, comp, p in itertools.product(channels_last, compile_modes, precisions):
            model = base.to(memory_format=torch.channels_last if cl else torch.contiguous_format)
            xin = x.contiguous(memory_format=torch.channels_last) if cl else x
            fn = torch.compile(model) if comp else model
            try:
                with torch.inference_mode(), precision(p, device):
                    out = fn(xin).float()
                    t = timeit(lambda: fn(xin), repeat=repeat, warmup=warmup, sync=sync)
            except Exception as exc:  # a mode this machine cannot run: say so, go on
                log(f"  batch {b} {p} cl={cl} compile={comp}: failed ({type(exc).__name__}: {exc})")
                continue
            dev = float((out.double() - ref.double()).abs().max() / ref.double().abs().max())
            tflops = 2 * gmac * b / t.best / 1e3
            row = {"batch": b, "precision": p, "channels_last": cl, "compile": comp,
                   "img_s": b / t.best, "tflops": tflops, "of_mm": tflops / mm[p],
                   "of_peak": tflops / peak[p] if peak else None, "max_dev": dev}
            rows.append(row)
            log(f"  batch {b:2d} {p} cl={cl!s:5} compile={comp!s:5}: {row['img_s']:.2f} img/s, "
                f"{tflops:.1f} TFLOP/s, dev {dev:.1e}")
        base = base.to(memory_format=torch.contiguous_format)
    return {"device": gpu, "config": f"{name}@{size}", "gmac": gmac, "mm_tflops": mm,
            "dense_peak": peak, "rows": rows, "torch": torch.__version__}


def report(res: dict) -> str:
    head = ["batch", "precision", "channels_last", "compile", "img/s", "TFLOP/s", "of mm",
            "of peak", "max dev"]
    rows = [[r["batch"], r["precision"], "yes" if r["channels_last"] else "no",
             "yes" if r["compile"] else "no", fmt(r["img_s"]), fmt(r["tflops"]),
             f"{100 * r['of_mm']:.0f}%", "-" if r["of_peak"] is None else f"{100 * r['of_peak']:.0f}%",
             "-" if (r["precision"] == "fp32" and not r["compile"] and not r["channels_last"]) else f"{r['max_dev']:.1e}"]
            for r in res["rows"]]
    return "\n".join([f"{res['device']}, {res['config']} ({res['gmac']:.1f} GMAC/img), torch "
                      f"{res['torch']}; dense peak {res['dense_peak']}", table(rows, head)])


def main(argv=None) -> int:
    from caffe_proto import cli
    ap = cli.parser(None, __doc__)
    ap.add_argument("--config", default="pspnet50:473", help="model:crop (see bench_forward)")
    ap.add_argument("--size", type=cli.positive_int, help="input side (default: the crop)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batches", default="1,8,16")
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--repeat", type=cli.positive_int, default=10)
    ap.add_argument("--mm", type=cli.positive_int, default=8192, help="side of the roofline matmul")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here (pass --device cpu for a smoke run)", file=sys.stderr)
        return 2
    res = run(args.config, args.size, args.device,
              tuple(int(b) for b in args.batches.split(",")), tuple(args.precisions.split(",")),
              (False,) if args.no_channels_last else (False, True),
              (False,) if args.no_compile else (False, True), args.repeat,
              warmup=1 if args.repeat == 1 else 3, mm_n=args.mm)
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
