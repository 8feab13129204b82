"""Train or fine-tune a PSPNet with the paper's recipe and the release's conventions.

    python train/run.py --dataset ade20k --data-root DIR --init pspnet50_ADE20K.pth --out runs/a
    python train/run.py --list train.txt --num-classes 5 --data-root DIR --init X.pth --iters 2000 --out runs/b
    python train/run.py --dataset voc --data-root DIR --arch pspnet101 --init-backbone resnet101_v2.pth --out runs/c
    torchrun --nproc_per_node=4 train/run.py ...           (the global batch is shared out)

Writes OUT/checkpoint.pth (every --save-every iterations or --checkpoint-minutes, at the end,
on SIGTERM / Ctrl-C; the one before is kept as OUT/checkpoint.prev.pth; --resume goes on from
the newest readable one, and so does a torchrun --max-restarts relaunch), OUT/model.pth
(psp_torch.load / eval/run.py --weights / converter/export.py take it),
OUT/best.pth (with --val-every), OUT/log.jsonl (one line per iteration), OUT/curves.png,
and with --tensorboard DIR the same scalars as TensorBoard events.
See train/README.md.

This module is the command line only: the settings are `train/config.py`'s TrainConfig
(defaults resolved there, once), the run is `train/trainer.py`'s.
"""
from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # run as a script: its folder must not shadow other modules
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

from psp_torch import cli, datasets
from psp_torch import limits as model_limits
from psp_torch.config import PSPNetConfig, option_defaults, options
from pspnet_caffe.train import augment as A
from pspnet_caffe.train import config, data, sinks, trainer
from pspnet_caffe.train.init import ARCHS


def _fraction_or_float(text: str) -> float:
    try:
        num, _, den = text.partition("/")
        value = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise cli.argparse.ArgumentTypeError(f"{text!r} is not a number like 1 or 1/8") from None
    if not 0 < value <= 1:
        raise cli.argparse.ArgumentTypeError(f"{text!r} must be in (0, 1]")
    return value


def parse_args(argv=None):
    p = cli.parser("train/run.py", __doc__)
    g = p.add_argument_group("data")
    g.add_argument("--data-root", required=True, help="dataset folder in its own layout")
    g.add_argument("--dataset", choices=datasets.names(),
                   help="a benchmark's training split (ADE20K training, VOC train_aug, "
                        "Cityscapes train) and its recipe; with --list: its label convention")
    g.add_argument("--list", help="one's own dataset: 'image label' per line, relative to "
                                  "--data-root; labels 0..N-1, 255 = ignored")
    g.add_argument("--num-classes", type=cli.positive_int,
                   help="classes of --list (and of the model: a different count re-initialises "
                        "conv6 / conv6_1)")
    g.add_argument("--class-names", help="one class name per line (with --list)")
    g.add_argument("--augment", choices=A.MODES, default="paper",
                   help="paper: scale, rotate, blur, mirror, pad, crop; caffe: the release's "
                        "data layer; none: pad and centre crop only")
    g.add_argument("--workers", type=cli.nonnegative_int, default=min(8, os.cpu_count() or 1),
                   help="loader processes per training process")
    g.add_argument("--max-pixels", type=cli.positive_int, default=datasets.MAX_PIXELS,
                   help="refuse an image or label above this many pixels (width x height, "
                        "read from its header before decoding)")
    g.add_argument("--val", action="store_true", help="validate on the dataset's val split")
    g.add_argument("--val-list", help="validate on this list file (one's own dataset)")
    g.add_argument("--val-every", type=cli.nonnegative_int, default=0,
                   help="validate every N iterations and at the end, single scale with the "
                        "authors' protocol; best.pth keeps the best (0 = only at the end)")
    g = p.add_argument_group("model")
    g.add_argument("--init", help="start from this model file (.pth of the project)")
    g.add_argument("--arch", choices=tuple(ARCHS), help="build this architecture instead")
    g.add_argument("--init-backbone", help="with --arch: ImageNet ResNet in the authors' "
                                           "initmodel layout (resnet{50,101,152}_v2.pth)")
    cli.add_options(g, options(), option_defaults(), only="(with --arch)",
                    kept="--init: the model file's own")
    g = p.add_argument_group("recipe (defaults: the dataset's, psp_torch.datasets)")
    paper = datasets.TrainRecipe          # the paper's recipe: its defaults, per dataset
    g.add_argument("--iters", type=cli.positive_int, help="iterations [the dataset's]")
    g.add_argument("--batch-size", type=cli.positive_int,
                   help=f"global batch [{paper.batch_size}]")
    g.add_argument("--crop-size", type=cli.positive_int, help="crop side [the dataset's; 8k+1]")
    g.add_argument("--lr", type=cli.positive_float,
                   help=f"base learning rate [{paper.base_lr}]")
    g.add_argument("--momentum", type=cli.fraction, help=f"[{paper.momentum}]")
    g.add_argument("--weight-decay", type=cli.nonnegative_float, help=f"[{paper.weight_decay}]")
    g.add_argument("--aux-weight", type=cli.nonnegative_float,
                   help=f"aux loss weight (0 = no aux loss) [{paper.aux_weight}]")
    g.add_argument("--loss-scale", type=_fraction_or_float, default=1.0,
                   help="1 = loss at the crop's resolution; 1/8 = labels every 8th pixel")
    g.add_argument("--sgd", choices=("caffe", "torch"), default="caffe",
                   help="caffe: v = m v + lr (g + wd w); torch: torch.optim.SGD")
    g.add_argument("--freeze-bn", action="store_true",
                   help="BN uses and keeps its stored statistics, scale/shift not trained")
    g.add_argument("--seed", type=cli.nonnegative_int, default=0)
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--save-every", type=cli.positive_int, default=1000,
                   help="write checkpoint.pth every N iterations")
    g.add_argument("--checkpoint-minutes", type=cli.nonnegative_float, default=0.0,
                   help="also write checkpoint.pth once this many minutes have passed since "
                        "the last one (0 = only every --save-every iterations)")
    g.add_argument("--resume", action="store_true",
                   help="go on from OUT/checkpoint.pth (OUT/checkpoint.prev.pth when the newest "
                        "is unreadable); implied on a torchrun --max-restarts relaunch")
    g.add_argument("--stop-after", type=cli.positive_int,
                   help="stop (with a checkpoint) once this many iterations are done, without "
                        "changing the schedule; --resume goes on")
    g.add_argument("--device", type=cli.device, default=cli.default_device(),
                   help="torch device: cpu, cuda (one per process under torchrun)")
    g.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                   help="autocast (fp16 with a GradScaler); none = float32, the faithful one")
    g.add_argument("--tf32", action="store_true", help="allow TF32 matmuls / convolutions")
    g.add_argument("--channels-last", action="store_true", help="NHWC memory format (CUDA)")
    g.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    g.add_argument("--tensorboard", metavar="DIR",
                   help="also write the scalars (loss, main, aux, lr, images/s, val mIoU) as "
                        "TensorBoard events into DIR (needs the tensorboard package)")
    model_limits.add_option(g)
    args = p.parse_args(argv)
    if (args.dataset is None) == (args.list is None) and not (args.dataset and args.list):
        p.error("give --dataset NAME or --list FILE --num-classes N")
    if args.list and args.num_classes is None and args.dataset is None:
        p.error("--list needs --num-classes N")
    if args.list and args.iters is None and args.dataset is None:
        p.error("--list needs --iters (one's own dataset has no preset)")
    if args.class_names and not args.list:
        p.error("--class-names goes with --list")
    if (args.init is None) == (args.arch is None):
        p.error("give exactly one of --init FILE and --arch NAME")
    arch_only = ["--init-backbone"] * bool(args.init_backbone) + [
        f"--{name.replace('_', '-')}" for name in cli.given_options(args, options())
        if options()[name].arch_only]
    if args.init and arch_only:
        p.error(f"{', '.join(arch_only)}: only with --arch (a model file has its own)")
    # the network options are checked where they are defined: the config (with --init the
    # file's pyramid is not known here: only the options given are checked, without a pyramid)
    try:
        PSPNetConfig(num_classes=1, crop_size=args.crop_size or
                     data.dataset_facts(args.dataset).crop_size,
                     **({} if args.arch else {"bins": ()}), **cli.given_options(args, options()))
    except ValueError as exc:
        p.error(str(exc))
    if args.val and args.list:
        p.error("--val validates on a benchmark's val split; with --list use --val-list")
    if args.val_every and not (args.val or args.val_list):
        p.error("--val-every needs --val or --val-list")
    if args.dataset and args.num_classes and not args.list and \
            args.num_classes != datasets.get(args.dataset).num_classes:
        p.error(f"--num-classes {args.num_classes}: {args.dataset} has "
                f"{datasets.get(args.dataset).num_classes} classes")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return cli.main(lambda: _train(args),
                    interrupted="interrupted before the first checkpoint (nothing to resume "
                                "from unless an earlier one is in --out)",
                    errors=(ValueError, OSError, FloatingPointError))


def _train(args) -> int:
    if args.tensorboard:
        problem = sinks.tensorboard_problem()
        if problem:
            raise cli.UsageError(f"--tensorboard: {problem}")
    return trainer.train(config.from_args(args))


if __name__ == "__main__":
    sys.exit(main())
