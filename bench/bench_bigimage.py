"""Peak memory of the protocol on a big image: strips (eval/strips.py) against the whole-image
path, each in a child process of its own (peak RSS from wait4, i.e. the child's ru_maxrss).

The model is a slim PSPNet50 with 150 classes (ADE20K's widths / 16, random weights: the
network's own memory is not what is measured), run with ADE20K's protocol (crop 473, base 512,
single scale, flip). Children:

- ``baseline``: imports, the model and the image, no segmentation (the fixed part);
- ``strips``: `segment_in_strips` on the image (default strip height);
- ``whole``: `segment_counted` + `predict`, only at --check-size (it holds the (C, H, W)
  probabilities); there both modes run and their labels are compared (a digest each).

At --size (default 10000 x 10000) only the strips run; the whole-image path is given as an
estimate: it holds at least two (C, H, W) float32 maps at once (the resized scale map and its
renormalised copy, or the running sum), 2 * C * H * W * 4 bytes, plus the baseline.

    nice python bench/bench_bigimage.py [--size 10000] [--check-size 1200] [--classes 150]
    python bench/bench_bigimage.py --size 0 --check-size 40 --classes 5 --crop 49 --base 60
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import run_child  # noqa: E402

CHILD = "--child"


def slim_model(classes: int, crop: int = 473):
    import torch
    from psp_torch.config import PSPNetConfig
    from psp_torch.pspnet import PSPNet
    torch.manual_seed(0)
    config = PSPNetConfig(num_classes=classes, blocks=(3, 4, 6, 3), stem_widths=(4, 4, 8),
                          mid_widths=(4, 8, 16, 32), out_widths=(16, 32, 64, 128),
                          ppm_width=32, head_width=32, crop_size=crop, stride_on_reduce=True)
    return PSPNet(config).eval()


def image(size: int):
    """A size x size RGB image: smooth colour ramps and a few bands (labels that vary)."""
    import numpy as np
    ramp = (np.arange(size, dtype=np.uint32) * 255 // max(1, size - 1)).astype(np.uint8)
    img = np.empty((size, size, 3), np.uint8)
    img[:, :, 0] = ramp[:, None]
    img[:, :, 1] = ramp[None, :]
    img[:, :, 2] = ramp[::-1][:, None] // 2 + ramp[None, :] // 2
    img[size // 3: size // 2] //= 3
    return img


def child(mode: str, size: int, classes: int, crop: int, base: int) -> None:
    import torch
    from pspnet_caffe.eval.protocol import predict, segment_counted
    from pspnet_caffe.eval.segmenter import protocol_settings
    from pspnet_caffe.eval.strips import label_dtype, segment_in_strips
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    model = slim_model(classes, crop)
    settings = protocol_settings({"dataset": "ade20k", "num_classes": classes}, device="cpu",
                                 crop_size=crop, base_size=base)
    img = image(size)
    labels = None
    if mode == "strips":
        labels, _ = segment_in_strips(model, img, settings,
                                      progress=lambda r: print(f"rows {r}", flush=True))
    elif mode == "whole":
        probs, _ = segment_counted(model, img, settings)
        labels = predict(probs).astype(label_dtype(classes))
        del probs
    digest = hashlib.sha256(labels.tobytes()).hexdigest()[:16] if labels is not None else None
    print(json.dumps({"mode": mode, "labels": digest}))


def measure(mode: str, size: int, args, limit: float | None = None) -> dict:
    """One child's peak RSS; `limit` seconds: stopped there (killed), with the rows it did."""
    r = run_child([sys.executable, __file__, CHILD, mode, "--size", str(size),
                   "--classes", str(args.classes), "--crop", str(args.crop),
                   "--base", str(args.base)], timeout=limit)
    done = [int(ln.split()[1]) for ln in r.stdout.splitlines() if ln.startswith("rows ")]
    if limit and r.returncode == -9:
        return {"mode": mode, "size": size, "peak_mib": r.peak_rss_mib, "wall_s": r.wall_s,
                "labels": None, "rows": done[-1] if done else 0}
    if r.returncode != 0:
        raise SystemExit(f"error: child {mode} at {size}: exit {r.returncode}: "
                         f"{r.stderr.strip().splitlines()[-1:] or ''}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return {"mode": mode, "size": size, "peak_mib": r.peak_rss_mib, "wall_s": r.wall_s,
            "labels": out["labels"], "rows": done[-1] if done else size}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size", type=int, default=10000, help="side of the big image (0: skip)")
    p.add_argument("--check-size", type=int, default=1200,
                   help="side where both modes run and their labels are compared (0: skip)")
    p.add_argument("--classes", type=int, default=150)
    p.add_argument("--limit", type=float, default=None, help="seconds after which the big "
                   "image's strips child is stopped (its peak so far and rows done are reported; "
                   "every strip repeats the same allocations)")
    p.add_argument("--crop", type=int, default=473, help="window side (8k + 1)")
    p.add_argument("--base", type=int, default=512, help="long side at scale 1, minus 1")
    p.add_argument(CHILD, choices=("baseline", "strips", "whole"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.size, args.classes, args.crop, args.base)
        return 0
    from bench.common import machine_line
    c = args.classes
    print(f"machine: {machine_line()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    if args.check_size:
        s = args.check_size
        base, strips, whole = (measure(m, s, args) for m in ("baseline", "strips", "whole"))
        same = strips["labels"] == whole["labels"]
        rows.append(f"{s} x {s}, {c} classes: baseline {base['peak_mib']:.0f} MiB; strips "
                    f"{strips['peak_mib']:.0f} MiB; whole image {whole['peak_mib']:.0f} MiB "
                    f"(estimate {base['peak_mib'] + 2 * c * s * s * 4 / 2**20:.0f} MiB); strips / "
                    f"whole = {strips['peak_mib'] / whole['peak_mib']:.3f}; labels "
                    f"{'identical' if same else 'DIFFERENT'}")
        print(rows[-1], flush=True)
        if not same:
            return 1
    s = args.size
    if s:
        base, strips = measure("baseline", s, args), measure("strips", s, args, args.limit)
        estimate = base["peak_mib"] + 2 * c * s * s * 4 / 2**20
        rows.append(f"{s} x {s}, {c} classes: baseline {base['peak_mib']:.0f} MiB; strips "
                    f"{strips['peak_mib']:.0f} MiB (+{strips['peak_mib'] - base['peak_mib']:.0f} "
                    f"MiB over the baseline; {strips['rows']} of {s} rows done in "
                    f"{strips['wall_s']:.0f} s); whole image estimated "
                    f"{estimate / 1024:.1f} GiB; strips / whole = "
                    f"{strips['peak_mib'] / estimate:.4f}")
        print(rows[-1])
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
