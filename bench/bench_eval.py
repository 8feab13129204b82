"""Evaluation protocol costs, as ratios against baselines.

1. Resize: the MATLAB-style imresize (eval.resize, float64 taps) against OpenCV's
   INTER_LINEAR on the same arrays: the uint8 image up to the largest test scale and the
   probability map back to the original size.
2. Protocol overhead: eval.protocol.segment on one image against the network calls alone
   (the same windows and mirrors through the same model), with the stand-in model
   (tests/standin.py) so the overhead is not hidden by a large network.
3. With --real: the same with the real networks (randomly initialised PSPNet of the
   dataset's preset), giving seconds per image and the share of time spent outside the
   network; and batched windows against one window at a time, side by side.

    python bench/bench_eval.py [--quick] [--real] [--device cpu|cuda] [--repeat 3]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))   # standin

import numpy as np  # noqa: E402
import torch  # noqa: E402

import standin  # noqa: E402
from pspnet_caffe.eval.protocol import (Settings, net_input, pad_bottom_right, scaled_size,  # noqa: E402
                           segment, window_probs, windows)
from pspnet_caffe.eval.resize import imresize  # noqa: E402
from psp_torch.datasets import MS_SCALES  # noqa: E402
from psp_torch.presets import BY_DATASET, MEAN_RGB  # noqa: E402


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


def bench_protocol(dataset, shape, scales, repeat, device, model=None, batch=4):
    p = BY_DATASET[dataset]
    if model is None:
        model = standin.TinySegNet(dataset).to(device).eval()
    st = Settings(p.num_classes, p.crop_size, p.base_size, MEAN_RGB, tuple(scales),
                  batch=batch, device=device)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    # the network calls alone: same windows (with mirrors) through window_probs
    inputs = []
    for s in scales:
        img_s = imresize(img, scaled_size(*shape, p.base_size, s))
        if max(img_s.shape[:2]) <= p.crop_size:
            inputs.append(net_input(img_s, p.crop_size, MEAN_RGB))
            continue
        padded = pad_bottom_right(img_s, p.crop_size, p.crop_size, MEAN_RGB)
        for y, x in windows(*padded.shape[:2], p.crop_size):
            inputs.append(net_input(padded[y:y + p.crop_size, x:x + p.crop_size],
                                    p.crop_size, MEAN_RGB))
    x = torch.from_numpy(np.stack(inputs))

    def net_only():
        for i in range(0, len(x), st.batch):
            window_probs(model, x[i:i + st.batch], st)

    with torch.inference_mode():
        t_net = best(net_only, repeat)
        t_all = best(lambda: segment(model, img, st), repeat)
    print(f"{dataset:<11} {shape[0]}x{shape[1]:<6} {len(scales)} scale(s) {len(x):4d} windows  "
          f"batch {batch:2d}  segment {t_all:7.2f}s  net+softmax {t_net:7.2f}s  "
          f"overhead x{t_all / t_net:.2f}  outside the network {100 * (t_all - t_net) / t_all:4.1f}%")
    return t_all


class TimedModel(torch.nn.Module):
    """Wraps a model and adds up the wall time spent inside its calls."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seconds, self.calls = model, 0.0, 0

    def forward(self, x):
        t = time.perf_counter()
        y = self.model(x)
        if y.is_cuda:
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t
        self.calls += 1
        return y


def bench_real_one(dataset, model, shape, scales, batch, device):
    """One image through eval.protocol.segment; the network's share measured inside the run."""
    p = BY_DATASET[dataset]
    st = Settings(p.num_classes, p.crop_size, p.base_size, MEAN_RGB, tuple(scales),
                  batch=batch, device=device)
    img = np.random.default_rng(0).integers(0, 256, shape + (3,), dtype=np.uint8)
    timed = TimedModel(model)
    with torch.inference_mode():
        t = time.perf_counter()
        segment(timed, img, st)
        total = time.perf_counter() - t
    outside = total - timed.seconds
    print(f"{dataset:<11} {shape[0]}x{shape[1]:<5} {len(scales)} scale(s) batch {batch}  "
          f"{timed.calls:3d} net calls  {total:7.1f} s/image  network {timed.seconds:7.1f} s  "
          f"outside the network {outside:5.1f} s = {100 * outside / total:4.1f}%")
    return total


def bench_real(device, repeat):
    """Seconds per image and the share outside the network, with the real networks."""
    import psp_torch

    voc = psp_torch.pspnet101_voc2012().to(device).eval()
    with torch.inference_mode():  # warm-up: first calls allocate
        voc(torch.zeros(1, 3, 473, 473, device=device))
    t1 = bench_real_one("voc", voc, (366, 500), (1.0,), 1, device)
    t2 = bench_real_one("voc", voc, (366, 500), (1.0,), 2, device)
    print(f"voc single scale: batched windows (2 per call) / one at a time = {t2 / t1:.2f}")
    bench_real_one("voc", voc, (366, 500), MS_SCALES, 1, device)
    del voc
    cs = psp_torch.pspnet101_cityscapes().to(device).eval()
    bench_real_one("cityscapes", cs, (1024, 2048), (1.0,), 1, device)


def main(argv=None):
    from caffe_proto import cli
    ap = cli.parser(None, __doc__)
    ap.add_argument("--quick", action="store_true", help="smaller arrays, one repeat")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeat", type=cli.positive_int, default=3)
    ap.add_argument("--real", action="store_true",
                    help="only the real-network protocol figures (minutes on a CPU)")
    args = ap.parse_args(argv)
    if args.real:
        bench_real(args.device, 1)
        return
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
