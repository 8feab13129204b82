"""Training speed: the whole train/run.py against a bare loop, and peak memory per batch size.

    python bench/bench_train.py                 # PSPNet50 at 473, batch 2; memory of the releases
    python bench/bench_train.py --quick         # slim nets (widths / 16) at 97: seconds
    python bench/bench_train.py --device cuda   # on a GPU: batch 16, fp32 / tf32 / bf16

1. Harness overhead. The same model (random init, aux head), batch, crop and threads: (a) the
   bare loop: `train_step` on random tensors already in memory, no data pipeline, no logging;
   (b) the full CLI in this process on a synthetic list-file dataset (JPEG images of 500x375,
   PNG labels: decoding, the paper's augmentation, loader workers, label scan, log.jsonl, tqdm
   off, the final checkpoint). Seconds per iteration = median over the iterations after the
   first (from log.jsonl); overhead = CLI / bare - 1. The checkpoint write is timed on its own
   and reported per iteration at the default --save-every 1000.
2. Peak memory of one training iteration (forward, backward, update, with the optimiser's
   momentum buffers already allocated) per batch size, each in a child process: peak RSS on CPU, torch.cuda.max_memory_allocated on CUDA. Batches from 2:
   BN on batch statistics needs two values per channel at the pyramid's 1x1 bin.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, fmt, machine_line, run_child, table  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

SLIM = dict(stem_widths=(4, 4, 8), mid_widths=(4, 8, 16, 32), out_widths=(16, 32, 64, 128),
            ppm_width=32, head_width=32, aux_width=16)


def config(name: str, crop: int):
    """pspnet50 / pspnet101 (the releases' shapes, aux head) or *slim (widths / 16)."""
    from psp_torch.config import PSPNetConfig
    from psp_torch.presets import BLOCKS
    depth = 50 if name.startswith("pspnet50") else 101
    extra = SLIM if name.endswith("slim") else dict(aux_width=256)
    return PSPNetConfig(num_classes=150 if depth == 50 else 19, blocks=BLOCKS[depth],
                        crop_size=crop, stride_on_reduce=depth == 50, **extra)


def model_file(folder: Path, name: str, crop: int) -> Path:
    from psp_torch import PSPNet
    from psp_torch.io import save_pspnet
    from pspnet_caffe.train.init import caffe_init
    torch.manual_seed(0)
    m = PSPNet(config(name, crop), {"name": name})
    caffe_init(m)
    return save_pspnet(m, folder / f"{name}.pth")


def synthetic_dataset(folder: Path, n: int, classes: int) -> Path:
    import cv2
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        img = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
        lab = rng.integers(0, classes, (375, 500), dtype=np.uint8)
        lab[:20] = 255
        cv2.imwrite(str(folder / f"{i}.jpg"), img)
        cv2.imwrite(str(folder / f"{i}.png"), lab)
        lines.append(f"{i}.jpg {i}.png")
    (folder / "train.txt").write_text("\n".join(lines) + "\n")
    return folder / "train.txt"


def bare_loop(path: Path, batch: int, crop: int, iters: int, device: str, amp: str) -> list:
    """Seconds per iteration of train_step on random tensors (same model, optimiser, recipe)."""
    from pspnet_caffe.train.init import model_from_file
    from pspnet_caffe.train.optim import make_optimizer
    from pspnet_caffe.train.step import train_step
    model, _ = model_from_file(path)
    model.to(device).train()
    opt = make_optimizer(model, kind="caffe", lr=0.01, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 3, crop, crop, generator=g) * 255 - 120).to(device)
    y = torch.randint(0, model.config.num_classes, (batch, crop, crop), generator=g).to(device)
    ac = None if amp == "none" else (lambda: torch.autocast(
        torch.device(device).type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16))
    times = []
    for it in range(iters):
        t0 = time.perf_counter()
        train_step(model, opt, x, y, iteration=it, max_iter=iters + 1, base_lr=0.01,
                   aux_weight=0.4, autocast=ac)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times[1:]


def cli_loop(path: Path, data: Path, batch: int, crop: int, iters: int, device: str,
             amp: str, workers: int, out: Path) -> tuple[list, float]:
    """Seconds per iteration of the whole train/run.py (in this process), and the seconds of
    one checkpoint write."""
    from pspnet_caffe.train import run as train_run
    argv = ["--data-root", str(data.parent), "--list", str(data), "--num-classes",
            str(config_classes(path)), "--init", str(path), "--out", str(out), "--iters",
            str(iters), "--batch-size", str(batch), "--crop-size", str(crop), "--workers",
            str(workers), "--device", device, "--amp", amp, "--no-progress",
            "--save-every", "1000000"]
    rc = train_run.main(argv)
    if rc != 0:
        raise RuntimeError(f"train/run.py exited {rc}")
    rows = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    per_it = [batch / r["images_per_s"] for r in rows][1:]
    ck = torch.load(out / "checkpoint.pth", weights_only=True)
    from pspnet_caffe.train import checkpoint
    t0 = time.perf_counter()
    checkpoint.save(out / "again.pth", **{k: v for k, v in ck.items() if k != "format"})
    return per_it, time.perf_counter() - t0


def config_classes(path: Path) -> int:
    return torch.load(path, weights_only=True)["config"]["num_classes"]


def overhead(name: str, crop: int, batch: int, iters: int, device: str, amp: str,
             workers: int, log) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = model_file(tmp, name, crop)
        data = synthetic_dataset(tmp, max(4, 2 * batch), config_classes(path))
        log(f"{name}@{crop} batch {batch}: bare loop ...")
        bare = bare_loop(path, batch, crop, iters, device, amp)
        log(f"{name}@{crop} batch {batch}: train/run.py ...")
        cli, ck_s = cli_loop(path, data, batch, crop, iters, device, amp, workers, tmp / "out")
    b, c = statistics.median(bare), statistics.median(cli)
    return {"model": f"{name}@{crop}", "batch": batch, "amp": amp, "bare_s": b, "cli_s": c,
            "overhead": c / b - 1, "checkpoint_s": ck_s, "checkpoint_per_it": ck_s / 1000,
            "iters": iters}


MEMORY_CHILD = r"""
import sys, json, resource, torch
torch.set_num_threads({threads})
sys.path.insert(0, {bench!r})
from bench_train import config
from psp_torch import PSPNet
from pspnet_caffe.train.optim import make_optimizer
from pspnet_caffe.train.step import train_step
name, crop, batch, device = {name!r}, {crop}, {batch}, {device!r}
m = PSPNet(config(name, crop)).to(device).train()
opt = make_optimizer(m, kind="caffe", lr=0.01, momentum=0.9, weight_decay=1e-4)
x = torch.randn(batch, 3, crop, crop, device=device) * 50
y = torch.randint(0, m.config.num_classes, (batch, crop, crop), device=device)
for p in m.parameters():                    # the optimiser state first (momentum buffers)
    p.grad = torch.zeros_like(p)
opt.step()
train_step(m, opt, x, y, iteration=1, max_iter=10, base_lr=0.01, aux_weight=0.4)
peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({{"peak_mib": peak}}))
"""


def memory(name: str, crop: int, batch: int, device: str, timeout: float) -> dict:
    code = MEMORY_CHILD.format(bench=str(ROOT / "bench"), name=name, crop=crop, batch=batch,
                               device=device, threads=torch.get_num_threads())
    r = run_child([sys.executable, "-c", code], timeout=timeout, cwd=str(ROOT))
    row = {"model": f"{name}@{crop}", "batch": batch}
    if r.returncode != 0:
        row["peak_mib"] = None
        row["note"] = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1][:80]
        return row
    row["peak_mib"] = json.loads(r.stdout.strip().splitlines()[-1])["peak_mib"]
    return row


def report(res: dict) -> str:
    lines = [f"machine: {res['machine']}", "",
             table([[r["model"], r["batch"], r["amp"], fmt(r["bare_s"]), fmt(r["cli_s"]),
                     f"{100 * r['overhead']:+.1f}%", fmt(r["checkpoint_s"]),
                     f"{100 * r['checkpoint_per_it'] / r['bare_s']:.2f}%"]
                    for r in res["overhead"]],
                   ["model", "batch", "amp", "bare loop s/it", "train/run.py s/it",
                    "harness overhead", "checkpoint s", "checkpoint share at --save-every 1000"]),
             "",
             table([[r["model"], r["batch"], fmt(r["peak_mib"]) if r["peak_mib"] else "-",
                     r.get("note", "")] for r in res["memory"]],
                   ["model", "batch", f"peak {'GPU' if res['device'] != 'cpu' else 'RSS'} MiB",
                    "note"])]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="slim nets at crop 97 (seconds)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iters", type=int, help="iterations per loop (default 4 quick, 6 full; "
                                              "20 on CUDA)")
    ap.add_argument("--workers", type=int, default=1, help="loader processes of the CLI")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's; CPU)")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--only", choices=("overhead", "memory"), help="one of the two parts")
    args = ap.parse_args(argv)
    cuda = args.device.startswith("cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    if args.quick:
        runs = [("pspnet50slim", 97, 2, "none")]
        mem = [("pspnet50slim", 97, b) for b in (2, 4)] + [("pspnet101slim", 97, 2)]
    elif cuda:
        runs = [(n, c, 16, a) for n, c in (("pspnet50", 473), ("pspnet101", 713))
                for a in ("none", "bf16")]
        mem = [(n, c, b) for n, c in (("pspnet50", 473), ("pspnet101", 713)) for b in (2, 8, 16)]
    else:
        runs = [("pspnet50", 473, 2, "none")]
        mem = [("pspnet50", 473, b) for b in (2, 4)] + [("pspnet101", 713, 2)]
    iters = args.iters or (20 if cuda else 4 if args.quick else 6)
    res = {"machine": machine_line(), "device": args.device, "overhead": [], "memory": []}
    runs = [] if args.only == "memory" else runs
    mem = [] if args.only == "overhead" else mem
    for name, crop, batch, amp in runs:
        res["overhead"].append(overhead(name, crop, batch, iters, args.device, amp,
                                        args.workers, log))
    for name, crop, batch in mem:
        log(f"memory {name}@{crop} batch {batch} ...")
        res["memory"].append(memory(name, crop, batch, args.device, 1800))
    print(report(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
