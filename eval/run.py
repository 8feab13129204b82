"""Evaluate a model on VOC 2012 / ADE20K / Cityscapes with the authors' protocol, or segment
one's own images.

    python eval/run.py --dataset ade20k --data-root DIR --weights X.pth [--ms] [--out DIR]
    torchrun --nproc_per_node=4 eval/run.py --dataset cityscapes --data-root DIR --weights X.pth
    python eval/run.py --image photo.jpg --weights X.pth [--ms] --out DIR
    python eval/run.py --video clip.mp4 --weights X.pth --out DIR       # or --video 0 (a camera)
    python eval/run.py --dataset voc --data-root DIR --onnx X.onnx   # ONNX Runtime instead of torch
    python eval/run.py --list val.txt --num-classes N [--class-names F] --data-root DIR --weights X.pth

See eval/README.md for the protocol, the outputs and the expected numbers.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: its folder must not shadow other modules
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import numpy as np
import torch
from tqdm import tqdm

from pspnet_caffe.eval import record
from pspnet_caffe.eval.clock import NetworkClock, outside_share
from pspnet_caffe.eval.evaluate import check_label_size, images, score_image
from pspnet_caffe.eval.html_report import DEFAULT_WORST, write_report
from pspnet_caffe.eval.image_scores import ImageScores
from pspnet_caffe.eval.inputs import IMAGE_SUFFIXES, image_paths, output_names  # noqa: F401
from pspnet_caffe.eval.metrics import Stats, summary
from pspnet_caffe.eval.outputs import Writer
from pspnet_caffe.eval.protocol import (SOFTMAX_MODES, Settings, SoftmaxCounts, predict,
                                        segment_counted)
from pspnet_caffe.eval.report import build_results, softmax_summary, table, write_results
from caffe_proto.printable import printable
from pspnet_caffe.eval.segmenter import Segmenter
from psp_torch import cli, datasets, runtime
from psp_torch.compiled import compile_model, compile_problem
from psp_torch.datasets import MS_SCALES, listfile
from psp_torch.digest import file_sha256, state_sha256
from psp_torch import limits as model_limits
from psp_torch.identity import REFERENCE, REPORT, identity_fields


def _scales(text: str) -> tuple:
    """--scales: comma-separated numbers > 0."""
    parts = [p for p in text.split(",") if p.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} holds no scale")
    return tuple(cli.positive_float(p.strip()) for p in parts)


_scales.__name__ = "scales"


def parse_args(argv=None) -> argparse.Namespace:
    p = cli.parser("eval/run.py", __doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="model file (.pth written by converter/convert.py)")
    src.add_argument("--model", help="MODULE:CALLABLE returning a model (custom models)")
    src.add_argument("--onnx", help="ONNX model (converter/export.py --onnx) run by ONNX Runtime")
    p.add_argument("--dataset", choices=datasets.names(),
                   help="dataset (default: the model's meta)")
    p.add_argument("--data-root", help="dataset folder in its own layout")
    p.add_argument("--split", help="val or test (default: the split of the published numbers)")
    p.add_argument("--list", help="the authors' list file: 'image [label]' per line")
    p.add_argument("--num-classes", type=cli.positive_int, help="one's own dataset (with "
                   "--list): labels 0..N-1, 255 = ignored, stored as they are")
    p.add_argument("--class-names", help="with --num-classes: one class name per line "
                   "(default: the model's meta)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--image", nargs="+", metavar="PATH", help="segment these images (files, "
                      "folders of images, or quoted glob patterns); colour overlay PNGs")
    what.add_argument("--video", metavar="IN", help="segment a video file, or a camera by its "
                      "index (0, 1, ...): OUT/<name>_overlay.avi (MJPG, the input's size and rate)")
    p.add_argument("--video-out", choices=("overlay", "labels", "both"), default="overlay",
                   help="with --video: the overlay video, per-frame label PNGs "
                        "(OUT/labels/<name>_NNNNNN.png and color/), or both")
    p.add_argument("--strip-rows", type=cli.nonnegative_int, default=None, metavar="N",
                   help="--image/--video: run the protocol in strips of N output rows (memory "
                        "follows the strip, the labels are the same); 0: whole image; default "
                        "(None): strips where the image's class probabilities exceed 2^27 values "
                        "(eval/README.md, 'Big images')")
    sc = p.add_mutually_exclusive_group()
    sc.add_argument("--ms", action="store_true", help=f"multi-scale {list(MS_SCALES)}")
    sc.add_argument("--scales", type=_scales, help="comma-separated scales, e.g. 0.5,1,1.5")
    p.add_argument("--no-flip", action="store_true", help="skip the mirrored pass")
    p.add_argument("--out", default=None, help="output folder (default: eval_out/<dataset>_<split>, "
                   "eval_out/images for --image)")
    p.add_argument("--device", type=cli.device, default=cli.default_device(),
                   help="torch device: cpu, cuda, cuda:N")
    p.add_argument("--batch", type=cli.positive_int, default=2,
                   help="windows (and mirrors) per net call")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="arithmetic of the network (fp32 is the faithful one; bf16/fp16 autocast)")
    p.add_argument("--compile", action="store_true",
                   help="run the network compiled by torch.compile (inductor, psp_torch.compiled): one "
                        "compilation per window shape (minutes), rounding within the oracle "
                        "bounds, recorded in run.json; speed: bench/README.md (on the 2-core "
                        "CPU measured no faster than eager; --onnx was)")
    p.add_argument("--resize", choices=("matlab", "opencv"), default="matlab",
                   help="image and score resizing: MATLAB's imresize (faithful) or OpenCV's")
    p.add_argument("--softmax", choices=SOFTMAX_MODES, default="stable",
                   help="stable, or matlab: caffe_process.m's float32 exp(score) with its "
                        "overflow to NaN (see eval/README.md)")
    p.add_argument("--crop-size", type=cli.positive_int,
                   help="window side (default: the model's meta, else the dataset's)")
    p.add_argument("--base-size", type=cli.positive_int,
                   help="longer side at scale 1 (default: the model's meta, else the dataset's)")
    p.add_argument("--save-probs", action="store_true", help="OUT/probs/<stem>.npy, float32 CxHxW")
    p.add_argument("--resume", action="store_true", help="skip images with saved outputs "
                   "(refused unless OUT/run.json shows the same model and settings)")
    p.add_argument("--limit", type=cli.positive_int, help="only the first N images")
    p.add_argument("--worst", type=cli.nonnegative_int, default=DEFAULT_WORST,
                   help="report.html shows the N images with the lowest per-image mIoU")
    p.add_argument("--skip-missing", action="store_true", help="list and skip missing files")
    p.add_argument("--workers", type=cli.nonnegative_int, default=2, help="data loading processes")
    model_limits.add_option(p)
    p.add_argument("--max-pixels", type=cli.positive_int, default=datasets.MAX_PIXELS,
                   help="refuse an image or label above this many pixels (width x height, "
                        "read from its header before decoding)")
    args = p.parse_args(argv)
    if args.image is None and args.video is None and args.data_root is None:
        p.error("--data-root is required (or --image, --video)")
    if args.strip_rows and args.resize != "matlab":
        p.error("--strip-rows needs --resize matlab (its resizing is separable by rows)")
    if args.model and not args.model.partition(":")[2]:
        p.error(f"--model expects MODULE:CALLABLE, got {args.model!r}")
    if args.onnx and args.precision != "fp32":
        p.error(f"--onnx runs the graph as exported (fp32); --precision {args.precision} "
                f"does not apply")
    if args.onnx and args.compile:
        p.error("--onnx runs the graph in ONNX Runtime; --compile applies to torch models")
    if args.compile:
        problem = compile_problem(args.device)
        if problem:
            p.error(f"--compile: {problem}")
    if args.num_classes is not None and args.num_classes > 255:
        p.error("--num-classes must be in 1..255")
    if args.num_classes is not None and not (args.list or args.image or args.video):
        p.error("--num-classes needs --list (one's own dataset), --image or --video")
    if args.class_names and args.num_classes is None:
        p.error("--class-names needs --num-classes")
    return args


# ---------------------------------------------------------------- setup

def load_model(args) -> torch.nn.Module:
    if args.model:
        mod, _, fn = args.model.partition(":")
        model = getattr(importlib.import_module(mod), fn)()
        model = model.to(args.device).eval()
        return compile_model(model) if args.compile else model
    if args.onnx:
        if not Path(args.onnx).is_file():
            raise FileNotFoundError(2, "no such model file", str(args.onnx))
        from pspnet_caffe.eval.onnx_model import OnnxModel
        return OnnxModel(args.onnx, threads=torch.get_num_threads(),
                         limits=model_limits.from_args(args))
    import psp_torch
    if Path(args.weights).is_dir():
        raise IsADirectoryError(21, "is a folder, not a model file (.pth)", str(args.weights))
    if not Path(args.weights).is_file():
        raise FileNotFoundError(2, "no such model file", str(args.weights))
    return psp_torch.load(args.weights, device=args.device, compile=args.compile,
                          limits=model_limits.from_args(args))


def custom_names(args, meta: dict) -> list[str]:
    """Class names of one's own dataset: --class-names, else the model's, else 'class k'."""
    n = args.num_classes
    if args.class_names:
        return listfile.read_class_names(args.class_names, n)
    names = meta.get("class_names")
    return list(names) if names and len(names) == n else listfile.default_class_names(n)


def authors_settings(facts: datasets.Dataset, num_classes: int) -> Settings:
    """The authors' protocol on a dataset: `Settings`' defaults, with the dataset's crop and
    every setting its `EvalDefaults` declares (base size, window stride rate)."""
    declared = {f.name: getattr(facts.eval, f.name) for f in dataclasses.fields(facts.eval)
                if f.name in Settings.__dataclass_fields__}
    return Settings(num_classes=num_classes, crop_size=facts.crop_size, **declared)


def resolve_settings(args, meta: dict) -> tuple[str, Settings, bool]:
    """(dataset name, protocol settings, whether the classes are one's own): a benchmark's
    classes unless --num-classes gives one's own (labels as stored, one's own defaults, no
    published numbers)."""
    meta = {k: v for k, v in meta.items() if v is not None}  # generic conversions leave gaps
    own_classes = args.num_classes is not None
    if own_classes:
        dataset, defaults = args.dataset or listfile.DATASET.name, listfile.DATASET
        num_classes = meta.get("num_classes", args.num_classes)
        if num_classes != args.num_classes:
            raise ValueError(f"{args.weights or args.model}: the model has {num_classes} "
                             f"classes, --num-classes is {args.num_classes}")
        args.names = custom_names(args, meta)
    else:
        dataset = args.dataset or meta.get("dataset")
        if dataset not in datasets.names():
            raise cli.UsageError("the model has no known dataset in its meta: pass --dataset "
                                 "(or --num-classes with --list for one's own classes)")
        defaults = datasets.get(dataset)
        num_classes = meta.get("num_classes", defaults.num_classes)
        if args.dataset and meta.get("dataset") not in (None, args.dataset):
            print(f"warning: model meta says dataset {meta['dataset']!r}, evaluating on "
                  f"{dataset!r}", file=sys.stderr)
        if num_classes != defaults.num_classes:
            raise ValueError(f"{args.weights or args.model}: the model has {num_classes} "
                             f"classes, {dataset} has {defaults.num_classes}")
        args.names = list(defaults.classes)
    base = authors_settings(defaults, num_classes)
    scales = defaults.eval.ms_scales if args.ms else args.scales or (1.0,)
    settings = dataclasses.replace(
        base,
        crop_size=args.crop_size if args.crop_size is not None
        else meta.get("crop_size", base.crop_size),
        base_size=args.base_size if args.base_size is not None
        else meta.get("base_size", base.base_size),
        mean_rgb=tuple(meta.get("mean_rgb", base.mean_rgb)),
        scales=tuple(scales), flip=not args.no_flip, resize=args.resize, batch=args.batch,
        device=args.device, precision=args.precision, softmax=args.softmax,
        compile=args.compile)
    return dataset, settings, own_classes


def reference_for(dataset: str, split: str, settings: Settings, own_classes: bool,
                  full: str | None):
    """(published numbers or None, None if they apply else the reason they do not): the
    dataset's evaluation defaults (psp_torch.datasets); every setting not exempt from the
    comparison (`Settings`) must be the authors' (`authors_settings`)."""
    if full:
        return None, full
    if own_classes:
        return None, "one's own dataset (--num-classes)"
    facts = datasets.get(dataset)
    authors = facts.eval
    if split != authors.split:
        return None, f"published numbers are on {authors.split}, not {split}"
    theirs = identity_fields(authors_settings(facts, settings.num_classes), REFERENCE)
    ours = identity_fields(settings, REFERENCE)
    differ = [f"{k} {ours[k]}, theirs {theirs[k]}" for k in theirs if ours[k] != theirs[k]]
    if differ:
        return None, f"settings differ from the authors' ({'; '.join(differ)})"
    if settings.scales == (1.0,):
        ref = authors.published_ss
    elif settings.scales == tuple(authors.ms_scales):
        ref = authors.published_ms
    else:
        return None, "scales other than single scale or the authors' multi-scale set"
    if ref is None:
        return None, "no published number for these scales"
    return ref, None


# ---------------------------------------------------------------- modes

def segmenter(args, model, dataset, settings) -> Segmenter:
    """The Python API around the CLI's model and settings (--image and --video use it)."""
    return Segmenter(model, settings=settings, dataset=dataset, class_names=args.names,
                     strip_rows=args.strip_rows, probs=args.save_probs)


def run_images(args, model, dataset, settings) -> int:
    out = Path(args.out or "eval_out/images")
    writer = Writer(out, dataset)
    paths = image_paths(args.image)
    names = output_names(paths)
    for p in paths:                     # every header within --max-pixels before any output
        datasets.image_size(p, args.max_pixels)
    model_sha, model_from = model_identity(args, model)
    fresh = not out.exists()
    writer.claim(record.make(model_sha, model_from, dataset, None, settings), names,
                 resume=False)
    seg = segmenter(args, model, dataset, settings)
    softmax_counts = SoftmaxCounts()
    written = 0
    try:
        for p, name in tqdm(list(zip(paths, names)), unit="img", disable=len(paths) < 2):
            r = seg(datasets.read_image(p, args.max_pixels))
            softmax_counts.add(r.softmax_counts)
            writer.write(name, r.labels, r.probs, image=r.image,
                         meta=r.softmax_counts.as_meta())
            written += 1
            print(f"{printable(p)}: " + ", ".join(f"{printable(n)} {100 * share:.1f}%"
                                                 for n, share in r.top())
                  + f" -> {printable(out / 'overlay' / (name + '.png'))}")
    except BaseException:
        if fresh and not written:
            writer.unclaim()
        raise
    warning = softmax_summary(softmax_counts, settings.softmax)[1]
    if warning:
        print(warning, file=sys.stderr)
    return 0


def run_video(args, model, dataset, settings) -> int:
    from pspnet_caffe.eval import video
    out = Path(args.out or "eval_out/video")
    name = video.source_name(args.video)
    writer = Writer(out, dataset)
    model_sha, model_from = model_identity(args, model)
    # the folder must be new, empty or ours (never a folder of someone else's files); frames are
    # not known in advance, so their names are not listed: a later run refuses to replace them
    fresh = not out.exists()
    writer.claim(record.make(model_sha, model_from, dataset, None, settings), [], resume=False)
    softmax_counts = SoftmaxCounts()
    done = []

    def frame_done(i: int, r) -> None:
        softmax_counts.add(r.softmax_counts)
        if args.video_out != "overlay":
            writer.write(f"{name}_{i:06d}", r.labels, r.probs, meta=r.softmax_counts.as_meta())
        done.append(i)

    target = out / f"{name}_overlay{video.SUFFIX}" if args.video_out != "labels" else None
    try:
        n = video.segment_video(segmenter(args, model, dataset, settings), args.video, target,
                                frame_done, limit=args.limit)
    except BaseException:
        if fresh and not done:
            writer.unclaim()
        raise
    warning = softmax_summary(softmax_counts, settings.softmax)[1]
    if warning:
        print(warning, file=sys.stderr)
    print(f"{args.video}: {n} frames -> " + ", ".join(
        str(t) for t in (target, args.video_out != "overlay" and writer.label_dir) if t))
    return 0


def model_identity(args, model) -> tuple[str, str]:
    """(sha256, where from) of the model: the file's bytes for --weights and --onnx, the
    state_dict's for --model."""
    if args.weights or args.onnx:
        path = args.weights or args.onnx
        return file_sha256(path), str(path)
    return state_sha256(model.state_dict()), args.model


def prepare_folder(out: Path, writer: Writer, rec: dict, names, resume: bool,
                   owner: bool) -> None:
    """The output folder made this run's, or refused (`Writer.claim`: --resume only on this
    very run's folder; never a file this program did not write). Only the `owner` (rank 0)
    writes."""
    writer.claim(rec, names, resume=resume, owner=owner)


def run_dataset(args, model, dataset, settings, own_classes: bool, d: runtime.Dist) -> int:
    rank, world = d.rank, d.world
    facts = datasets.get(dataset)
    split = args.split or (listfile.DATASET if own_classes else facts).eval.split
    out = Path(args.out or f"eval_out/{dataset}_{split}")
    items = facts.samples(args.data_root, split) if args.list is None \
        else facts.list_samples(args.data_root, args.list)
    reason = None
    bad = datasets.missing_files(items)
    if bad:
        listing = "\n  ".join(map(printable, bad[:50])) + (
            f"\n  ... and {len(bad) - 50} more" if len(bad) > 50 else "")
        if not args.skip_missing:
            raise datasets.DatasetError(f"{printable(bad[0].rsplit(' (', 1)[0])}: {len(bad)} "
                                  f"dataset file(s) missing or unreadable "
                                  f"(nothing was run; --skip-missing skips them):\n  {listing}")
        if rank == 0:
            print(f"skipping {len(bad)} missing/unreadable file(s):\n  {listing}", file=sys.stderr)
        bad_set = {b.rsplit(" (", 1)[0] for b in bad}
        items = [s for s in items if str(s.image) not in bad_set
                 and (s.label is None or str(s.label) not in bad_set)]
        reason = "files were skipped"
    if args.list:
        reason = reason or "--list selects its own images"
    if args.limit is not None:
        items = items[:args.limit]
        reason = reason or "--limit"
    expected = facts.split(split).images
    if reason is None and expected is not None and len(items) != expected:
        reason = f"{len(items)} images, the full {split} split has {expected}"
    has_labels = all(s.label is not None for s in items) and bool(items)
    if not has_labels:
        submission = facts.split(split).submission
        reason = (f"no ground truth: {facts.title} {split} is scored by the official server; "
                  f"submit {out / submission}" if submission else "no ground truth")
    reference, reason = reference_for(dataset, split, settings, own_classes, reason)

    writer = Writer(out, dataset, split)
    model_sha, model_from = model_identity(args, model)
    rec = record.make(model_sha, model_from, dataset, split, settings)
    prepare_folder(out, writer, rec, [s.name for s in items], args.resume, owner=rank == 0)
    runtime.barrier(d)
    shard = items[rank::world]
    done = frozenset(s.name for s in shard
                     if args.resume and writer.finished(s.name, args.save_probs))
    loader = images(shard, dataset, settings, workers=args.workers, done=done,
                    max_pixels=args.max_pixels)
    stats = Stats(settings.num_classes)
    per_image = ImageScores(len(items))           # by position in `items`, summed over ranks
    softmax_counts = SoftmaxCounts()
    t0 = time.perf_counter()
    # closed (its line ended) before an error line is printed: one message line, not a
    # bar and the message glued together and redrawn
    resumed = 0
    net = NetworkClock(model, settings.device)
    computed_seconds = 0.0        # wall time of the images computed here (not the resumed ones)
    with tqdm(total=len(shard), unit="img", disable=rank != 0, dynamic_ncols=True,
              desc=f"{dataset} {split}" + (f" [rank 0 of {world}]" if world > 1 else "")) as bar:
        for i, img, scaled, gt in loader:
            s = shard[i]
            if img is None:  # finished earlier: rebuild from the saved label PNG
                pred = writer.read_prediction(s.name)
                softmax_counts.add(SoftmaxCounts.from_meta(writer.read_meta(s.name)))
                if s.label is not None:
                    gt = facts.read_ground_truth(s, settings.num_classes, args.max_pixels)
                resumed += 1
            else:
                check_label_size(s, img, None if gt is None else gt[0])
                started = time.perf_counter()
                probs, counts = segment_counted(net, img, settings, scaled)
                softmax_counts.add(counts)
                pred = predict(probs)
                writer.write(s.name, pred, probs.cpu().numpy() if args.save_probs else None,
                             meta=counts.as_meta())
                computed_seconds += time.perf_counter() - started
                outside = 100 * outside_share(net.seconds, computed_seconds)
                bar.set_postfix(outside=f"{outside:.1f}%", refresh=False)
            if gt is not None:
                one = score_image(pred, gt, dataset, settings.num_classes)
                stats.add(one)
                per_image.add(rank + i * world, one)
                outside = 100 * outside_share(net.seconds, computed_seconds)
                bar.set_postfix(mIoU=f"{100 * summary(stats)['miou']:.2f}",
                                outside=f"{outside:.1f}%", refresh=False)
            bar.update(1)
    elapsed = time.perf_counter() - t0
    total = Stats.from_vector(runtime.all_sum_int(stats.to_vector(), d), settings.num_classes)
    softmax_counts = SoftmaxCounts.from_vector(runtime.all_sum_int(softmax_counts.to_vector(), d))
    per_image = per_image.summed(d)
    if rank != 0:
        return 0
    softmax_info, warning = softmax_summary(softmax_counts, settings.softmax)
    if warning:
        print(warning, file=sys.stderr)
    print(f"{len(shard)} images on rank 0 ({resumed} resumed) in {elapsed:.1f}s "
          f"({len(shard) / max(elapsed, 1e-9):.2f} img/s); outputs in {out}")
    if len(shard) > resumed:
        per = computed_seconds / (len(shard) - resumed)
        print(f"per image: {per:.2f} s, of which {net.seconds / (len(shard) - resumed):.2f} s in "
              f"the network ({100 * outside_share(net.seconds, computed_seconds):.1f}% outside "
              f"it: windows, softmax, resizing, writing)")
    if not has_labels:
        print(f"predictions written to {writer.label_dir}")
        print(f"NO REFERENCE ({reason})")
        return 0
    info = {"dataset": dataset, "split": split, "images": len(items),
            "model": getattr(model, "meta", {}).get("name"), "model_sha256": model_sha,
            "settings": identity_fields(settings, REPORT),
            "softmax": softmax_info}
    res = build_results(total, args.names, info, reference, reason)
    write_results(out, res)
    print(table(res))
    print(f"results: {out / 'results.json'}, {out / 'results.csv'}")
    worst = per_image.worst(args.worst)
    report = write_report(writer, res, total.confusion, args.names, items, worst, dataset)
    print(f"report: {report} (confusion matrix, IoU chart, colours, {len(worst)} worst images)")
    print(res["verdict"])
    return 0


def main(argv=None) -> int:
    """The command, under psp_torch/cli.py's convention: usage errors 2, bad input or a failed
    write one line ``error: FILE: what`` and status 1, Ctrl-C 130 (finished images are kept
    whole: --resume goes on from them)."""
    args = parse_args(argv)
    return cli.main(lambda: _guarded(args), interrupted="interrupted; the images finished so "
                    "far are kept (rerun with --resume to go on)")


def _guarded(args) -> int:
    try:
        return _main(args)
    except (ValueError, OSError) as exc:    # DatasetError, ModelFileError, disk full, ...
        msg = str(exc)
        if "in DataLoader worker process" in msg:  # re-raised with the worker's traceback:
            raise ValueError(msg.strip().splitlines()[-1].split(": ", 1)[-1]) from None
        if isinstance(exc, OSError) and not exc.filename and not isinstance(exc, ValueError):
            raise OSError(f"{args.out or 'eval_out'}: {msg} (writing the outputs)") from None
        raise


def _main(args) -> int:
    d = runtime.init(args.device)
    args.device = d.device
    if args.precision == "fp32":  # true float32 convolutions on GPUs (no TF32 shortcuts)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    try:
        model = load_model(args)
        meta = dict(getattr(model, "meta", {}) or {})
        dataset, settings, own_classes = resolve_settings(args, meta)
        if args.image:
            return run_images(args, model, dataset, settings) if d.main else 0
        if args.video is not None:
            return run_video(args, model, dataset, settings) if d.main else 0
        return run_dataset(args, model, dataset, settings, own_classes, d)
    finally:
        runtime.shutdown(d)


if __name__ == "__main__":
    sys.exit(main())
