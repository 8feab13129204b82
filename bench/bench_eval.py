"""Evaluation protocol costs, as ratios against baselines.

1. Resize: the MATLAB-style imresize (eval.resize, float64 taps) against OpenCV's
   INTER_LINEAR on the same arrays: the uint8 image up to the largest test scale and the
   probability map back to the original size.
2. Protocol overhead: eval.protocol.segment on one image against the network calls alone
   (the same windows and mirrors through the same model), with the stand-in model
   (eval.standin) so the overhead is not hidden by a large network.

    python bench/bench_eval.py [--quick] [--device cpu|cuda] [--repeat 3]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from eval import standin  # noqa: E402
from eval.protocol import (Settings, net_input, pad_bottom_right, scaled_size,  # noqa: E402
                           segment, window_probs, windows)
from eval.resize import imresize  # noqa: E402
from psp_torch.presets import BY_DATASET, MS_SCALES  # noqa: E402


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_resize(cases, repeat, device):
    print(f"{'resize case':<44} {'matlab s':>9} {'opencv s':>9} {'ratio':>7}")
    for label, make, size, cf in cases:
        a = make()
        if isinstance(a, torch.Tensor):
            a = a.to(device)
        tm = best(lambda: imresize(a, size, "matlab", channels_first=cf), repeat)
        to = best(lambda: imresize(a, size, "opencv", channels_first=cf), repeat)
        print(f"{label:<44} {tm:9.3f} {to:9.3f} {tm / to:7.1f}x")


def bench_protocol(dataset, shape, scales, repeat, device):
    p = BY_DATASET[dataset]
    model = standin.TinySegNet(dataset).to(device).eval()
    st = Settings(p.num_classes, p.crop_size, p.base_size, p.mean_rgb, tuple(scales),
                  batch=4, device=device)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    # the network calls alone: same windows (with mirrors) through window_probs
    inputs = []
    for s in scales:
        img_s = imresize(img, scaled_size(*shape, p.base_size, s))
        if max(img_s.shape[:2]) <= p.crop_size:
            inputs.append(net_input(img_s, p.crop_size, p.mean_rgb))
            continue
        padded = pad_bottom_right(img_s, p.crop_size, p.crop_size, p.mean_rgb)
        for y, x in windows(*padded.shape[:2], p.crop_size):
            inputs.append(net_input(padded[y:y + p.crop_size, x:x + p.crop_size],
                                    p.crop_size, p.mean_rgb))
    x = torch.from_numpy(np.stack(inputs))

    def net_only():
        for i in range(0, len(x), st.batch):
            window_probs(model, x[i:i + st.batch], st)

    t_net = best(net_only, repeat)
    t_all = best(lambda: segment(model, img, st), repeat)
    print(f"{dataset:<11} {shape[0]}x{shape[1]:<6} {len(scales)} scale(s) {len(x):4d} windows  "
          f"segment {t_all:7.2f}s  net+softmax {t_net:7.2f}s  overhead x{t_all / t_net:.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller arrays, one repeat")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    repeat = 1 if args.quick else args.repeat
    torch.manual_seed(0)
    if args.quick:
        cases = [
            ("uint8 image 366x500x3 -> 897x657 (VOC 1.75)",
             lambda: np.random.randint(0, 256, (366, 500, 3), np.uint8), (657, 897), False),
            ("probs 21x657x897 -> 366x500",
             lambda: torch.rand(21, 657, 897), (366, 500), True),
        ]
    else:
        cases = [
            ("uint8 image 1024x2048x3 -> 1793x3585 (CS 1.75)",
             lambda: np.random.randint(0, 256, (1024, 2048, 3), np.uint8), (1793, 3585), False),
            ("probs 19x1793x3585 -> 1024x2048 (CS 1.75)",
             lambda: torch.rand(19, 1793, 3585), (1024, 2048), True),
            ("probs 150x673x897 -> 512x683 (ADE 1.75)",
             lambda: torch.rand(150, 673, 897), (512, 683), True),
        ]
    bench_resize(cases, repeat, args.device)
    print()
    bench_protocol("voc", (366, 500), (1.0,), repeat, args.device)
    if not args.quick:
        bench_protocol("voc", (366, 500), MS_SCALES, repeat, args.device)
        bench_protocol("ade20k", (512, 683), (1.0,), repeat, args.device)
        bench_protocol("cityscapes", (1024, 2048), (1.0,), repeat, args.device)


if __name__ == "__main__":
    main()
