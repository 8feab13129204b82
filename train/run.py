"""Train or fine-tune a PSPNet with the paper's recipe and the release's conventions.

    python train/run.py --dataset ade20k --data-root DIR --init pspnet50_ADE20K.pth --out runs/a
    python train/run.py --list train.txt --num-classes 5 --data-root DIR --init X.pth --iters 2000 --out runs/b
    python train/run.py --dataset voc --data-root DIR --arch pspnet101 --init-backbone resnet101_v2.pth --out runs/c
    torchrun --nproc_per_node=4 train/run.py ...           (the global batch is shared out)

Writes OUT/checkpoint.pth (every --save-every iterations and at the end; --resume goes on from
it), OUT/model.pth (psp_torch.load / eval/run.py --weights / converter/export.py take it),
OUT/best.pth (with --val-every), OUT/log.jsonl (one line per iteration), OUT/curves.png.
See train/README.md.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: its folder must not shadow other modules
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

import numpy as np
import torch
from tqdm import tqdm

from psp_torch import cli
from psp_torch.digest import state_sha256
from psp_torch.presets import BY_DATASET, MEAN_RGB
from pspnet_caffe.eval import datasets as ds
from pspnet_caffe.train import augment as A
from pspnet_caffe.train import checkpoint as ck
from pspnet_caffe.train import data as D
from pspnet_caffe.train import distributed as dd
from pspnet_caffe.train import plot

ARCHS = ("pspnet50", "pspnet101", "pspnet152", "pspnet269")
# Settings that change the numbers: a resumed run must have every one of them unchanged.
RECIPE = ("dataset", "list", "num_classes", "init", "arch", "init_backbone", "bins", "pool",
          "reduction", "aux_weight", "loss_scale", "sgd", "freeze_bn", "dropout", "seed",
          "augment", "iters", "batch_size", "crop_size", "lr", "momentum", "weight_decay",
          "amp", "tf32", "samples")


def _bins(text: str) -> tuple:
    if text.lower() in ("none", "0", ""):
        return ()
    try:
        bins = tuple(int(b) for b in text.split(","))
    except ValueError:
        raise cli.argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                             f"integers (or 'none')") from None
    if any(b < 1 for b in bins) or len(set(bins)) != len(bins):
        raise cli.argparse.ArgumentTypeError(f"{text!r}: bins must be distinct and >= 1")
    return bins


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
    g.add_argument("--dataset", choices=ds.DATASETS,
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
    g.add_argument("--val", action="store_true", help="validate on the dataset's val split")
    g.add_argument("--val-list", help="validate on this list file (one's own dataset)")
    g.add_argument("--val-every", type=cli.nonnegative_int, default=0,
                   help="validate every N iterations and at the end, single scale with the "
                        "authors' protocol; best.pth keeps the best (0 = only at the end)")
    g = p.add_argument_group("model")
    g.add_argument("--init", help="start from this model file (.pth of the project)")
    g.add_argument("--arch", choices=ARCHS, help="build this architecture instead")
    g.add_argument("--init-backbone", help="with --arch: ImageNet ResNet in the authors' "
                                           "initmodel layout (resnet{50,101,152}_v2.pth)")
    g.add_argument("--bins", type=_bins, help="with --arch: pyramid bins, e.g. 1,2,3,6 (the "
                                               "release), 1, or none (dilated FCN) [1,2,3,6]")
    g.add_argument("--pool", choices=("ave", "max"), help="with --arch: pyramid pooling [ave]")
    g.add_argument("--no-reduction", action="store_true",
                   help="with --arch: no 1x1 dimension reduction after the pooling")
    g.add_argument("--dropout", type=cli.fraction, help="dropout before conv6 / conv6_1 "
                                                        "[preset: 0.1]")
    g = p.add_argument_group("recipe (defaults: psp_torch.presets, per dataset)")
    g.add_argument("--iters", type=cli.positive_int, help="iterations [preset]")
    g.add_argument("--batch-size", type=cli.positive_int, help="global batch [16]")
    g.add_argument("--crop-size", type=cli.positive_int, help="crop side [preset; 8k+1]")
    g.add_argument("--lr", type=cli.positive_float, help="base learning rate [0.01]")
    g.add_argument("--momentum", type=cli.fraction, help="[0.9]")
    g.add_argument("--weight-decay", type=cli.nonnegative_float, help="[1e-4]")
    g.add_argument("--aux-weight", type=cli.nonnegative_float, help="aux loss weight (0 = no "
                                                                    "aux loss) [0.4]")
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
    g.add_argument("--resume", action="store_true", help="go on from OUT/checkpoint.pth")
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
    if args.init and (args.init_backbone or args.bins is not None or args.pool or
                      args.no_reduction):
        p.error("--init-backbone, --bins, --pool and --no-reduction go with --arch (a model "
                "file has its own)")
    if args.val and args.list:
        p.error("--val validates on a benchmark's val split; with --list use --val-list")
    if args.val_every and not (args.val or args.val_list):
        p.error("--val-every needs --val or --val-list")
    if args.dataset and args.num_classes and not args.list and \
            args.num_classes != BY_DATASET[args.dataset].num_classes:
        p.error(f"--num-classes {args.num_classes}: {args.dataset} has "
                f"{BY_DATASET[args.dataset].num_classes} classes")
    return args


# ---------------------------------------------------------------- setup

def resolve(args) -> dict:
    """Every default from the presets; returns the recipe (the settings a resume must keep)."""
    facts = D.training_facts(None if args.list and not args.dataset else args.dataset)
    if args.dataset and args.num_classes is None:
        args.num_classes = BY_DATASET[args.dataset].num_classes
    for k in ("iters", "batch_size", "lr", "aux_weight", "dropout", "momentum", "weight_decay"):
        if getattr(args, k) is None:
            setattr(args, k, facts[k])
    args.rotate, args.blur, args.train_recipe = facts["rotate"], facts["blur"], facts["recipe"]
    args.crop_default = facts["crop_size"]
    return facts


def recipe_of(args, samples: int) -> dict:
    r = {k: getattr(args, k, None) for k in RECIPE}
    r["init"] = str(Path(args.init).resolve()) if args.init else None
    r["init_backbone"] = str(Path(args.init_backbone).resolve()) if args.init_backbone else None
    r["list"] = str(Path(args.list).resolve()) if args.list else None
    r["bins"] = list(args.bins) if args.bins is not None else None
    r["reduction"] = not args.no_reduction
    r["samples"] = samples
    return r


def _reconfigured(model, **changes):
    """The same model with config fields changed (same weights: crop/dropout change no shape)."""
    from psp_torch.pspnet import PSPNet
    cfg = model.config
    changes = {k: v for k, v in changes.items()
               if hasattr(cfg, k) and v is not None and getattr(cfg, k) != v}
    if not changes:
        return model
    new = PSPNet(dataclasses.replace(cfg, **changes), dict(model.meta))
    new.load_state_dict(model.state_dict())
    return new


def build_model(args, log):
    from pspnet_caffe.train import init as I
    if args.init:
        if not Path(args.init).is_file():
            raise FileNotFoundError(2, "No such file or directory", args.init)
        # a file without the aux head gets a fresh one when the aux loss is on (paper, sec. 4)
        model, report = I.model_from_file(args.init, num_classes=args.num_classes,
                                          aux=True if args.aux_weight > 0 else None,
                                          dropout=args.dropout)
        # crop: the dataset's preset, or for one's own data the model's own
        crop = args.crop_size or (args.crop_default if args.dataset else model.config.crop_size)
        model = _reconfigured(model, crop_size=crop)
    else:
        crop = args.crop_size or args.crop_default
        model, report = I.model_from_arch(
            args.arch, args.num_classes, crop, bins=args.bins if args.bins is not None
            else (1, 2, 3, 6), pool=args.pool or "ave", reduction=not args.no_reduction,
            aux_weight=args.aux_weight, dropout=args.dropout, backbone=args.init_backbone)
    args.crop_size = model.config.crop_size
    for line in report:
        log(line)
    return model


def model_meta(args, model) -> dict:
    meta = dict(model.meta)
    c = D.class_facts(args.dataset, args.num_classes, args.class_names)
    dataset = c["dataset"]
    meta.update(name=f"pspnet{model.config.depth}_{dataset or ds.CUSTOM}", dataset=dataset,
                num_classes=args.num_classes, class_names=c["class_names"],
                palette=c["palette"], crop_size=model.config.crop_size,
                base_size=c["base_size"] if dataset else (meta.get("base_size") or c["base_size"]),
                mean_rgb=list(MEAN_RGB), channel_order="BGR")
    return meta


# ---------------------------------------------------------------- the run

class Stop:
    """Ctrl-C (SIGINT) / SIGTERM: finish the iteration, write a checkpoint, exit 130."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:          # a second Ctrl-C: stop now (the last checkpoint stays)
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def model_has_pyramid_bin1(model) -> bool:
    return 1 in tuple(getattr(model.config, "bins", ()))


def valid_pixels(labels: torch.Tensor, loss_scale: float) -> int:
    step = int(round(1 / loss_scale))
    lab = labels[:, ::step, ::step] if step > 1 else labels
    return int((lab != ds.IGNORE).sum())


def _autocast(args, device: str):
    """A factory of the autocast context (train_step enters a fresh one per iteration)."""
    if args.amp == "none":
        return None
    dtype = torch.bfloat16 if args.amp == "bf16" else torch.float16
    kind = torch.device(device).type
    return lambda: torch.autocast(device_type=kind, dtype=dtype)


class Run:
    def __init__(self, args, d: dd.Dist):
        self.args, self.d = args, d
        self.out = Path(args.out)
        self.log_path = self.out / "log.jsonl"

    def say(self, msg: str):
        if self.d.main:
            tqdm.write(msg, file=sys.stderr)

    # -- model, optimiser, data ------------------------------------------------------------
    def setup(self):
        args, d = self.args, self.d
        resolve(args)
        self.items = D.training_samples(args.dataset, args.data_root, args.list)
        self.convention = args.dataset or ds.CUSTOM
        torch.manual_seed(args.seed)
        self.model = build_model(args, self.say)
        self.model.meta = model_meta(args, self.model)
        self.init_hash = state_sha256(self.model.state_dict())
        self.recipe = recipe_of(args, len(self.items))
        if args.crop_size % 8 != 1:
            self.say(f"note: crop {args.crop_size} is not of the form 8k+1 (473, 713): the "
                     f"output is not exactly Caffe's zoom-8 grid")
        if args.batch_size % d.world:
            raise ValueError(f"--batch-size {args.batch_size} does not divide by the world "
                             f"size {d.world} (each process takes batch/world images)")
        from pspnet_caffe.train import bn as B
        if not args.freeze_bn and args.batch_size < 2 and model_has_pyramid_bin1(self.model):
            raise ValueError(f"--batch-size {args.batch_size}: BN on batch statistics needs at "
                             f"least 2 images per BN batch (the pyramid's 1x1 bin has one value "
                             f"per image); use --freeze-bn or a larger batch")
        if args.freeze_bn:
            B.freeze_bn(self.model)
        warning = B.bn_warning(args.batch_size, args.freeze_bn)   # BN batch = global batch
        if warning:
            self.say(f"warning: {warning}")
        self.model.to(d.device)
        if d.world > 1 and not args.freeze_bn:    # BN statistics of the global batch
            self.model = B.sync_bn(self.model)
        if args.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.model.train()
        from pspnet_caffe.train.optim import make_optimizer
        self.opt = make_optimizer(self.model, kind=args.sgd, lr=args.lr, momentum=args.momentum,
                                  weight_decay=args.weight_decay, freeze_bn=args.freeze_bn)
        self.scaler = torch.amp.GradScaler(torch.device(d.device).type) \
            if args.amp == "fp16" else None
        has_aux = getattr(self.model, "aux", None) is not None
        self.net = dd.wrap(self.model, d, find_unused=has_aux and args.aux_weight == 0)
        self.iteration, self.val_points, self.best = 0, [], None
        if args.resume:
            self.load()
        elif d.main and (self.out / "checkpoint.pth").exists():
            raise ValueError(f"{self.out / 'checkpoint.pth'}: a run is already here; --resume "
                             f"goes on with it, or choose another --out")
        elif d.main:        # a fresh run: no lines of an earlier, failed one
            self.log_path.unlink(missing_ok=True)
        if not args.resume or self._rng_missing:
            # dropout draws: per process, from (seed, rank, iteration) so K changes are defined
            torch.manual_seed(int(np.random.SeedSequence(
                [args.seed, 2, d.rank, self.iteration]).generate_state(1)[0]))
        if d.main:
            D.scan_labels(self.items, self.convention, args.num_classes,
                          workers=max(1, args.workers), progress=not args.no_progress)

    def load(self):
        path = self.out / "checkpoint.pth"
        if not path.is_file():
            raise FileNotFoundError(2, "no checkpoint to resume from", str(path))
        c = ck.load(path)
        ck.check_same_run(path, c, self.recipe, self.init_hash)
        self.model.load_state_dict(c["model"])
        self.opt.load_state_dict(c["optimizer"])
        if self.scaler is not None and c.get("scaler"):
            self.scaler.load_state_dict(c["scaler"])
        self.iteration = int(c["iteration"])
        self.val_points, self.best = list(c.get("val") or []), c.get("best_miou")
        rng = c.get("rng") or {}
        self._rng_missing = rng.get("world") != self.d.world
        if not self._rng_missing:
            torch.set_rng_state(rng["torch"][self.d.rank])
            if rng.get("cuda") and self.d.device.startswith("cuda"):
                torch.cuda.set_rng_state(rng["cuda"][self.d.rank], self.d.device)
        else:
            self.say(f"note: the checkpoint was written by {rng.get('world')} process(es), this "
                     f"run has {self.d.world}: dropout draws restart from (seed, rank, "
                     f"iteration)")
        self.say(f"resuming {path} at iteration {self.iteration} of {self.args.iters}")
        if self.d.main and self.log_path.exists():   # drop lines written after the checkpoint
            keep = [ln for ln in self.log_path.read_text().splitlines()
                    if ln.strip() and json.loads(ln)["iter"] <= self.iteration]
            ck.atomic_write(self.log_path, lambda tmp: Path(tmp).write_text(
                "".join(ln + "\n" for ln in keep)))

    _rng_missing = False

    # -- outputs ---------------------------------------------------------------------------
    def save_checkpoint(self):
        d = self.d
        states = dd.gather_objects(torch.get_rng_state(), d)
        cuda = dd.gather_objects(torch.cuda.get_rng_state(d.device), d) \
            if d.device.startswith("cuda") else None
        if not d.main:
            return
        ck.save(self.out / "checkpoint.pth", iteration=self.iteration,
                model=self.model.state_dict(), optimizer=self.opt.state_dict(),
                scaler=self.scaler.state_dict() if self.scaler else None,
                rng={"torch": states, "cuda": cuda, "world": d.world},
                recipe=self.recipe, init_hash=self.init_hash, val=self.val_points,
                best_miou=self.best)
        self.plot()

    def save_model(self, name: str):
        if not self.d.main:
            return
        from psp_torch.io import save_pspnet
        meta = dict(self.model.meta, recipe=self.recipe, iteration=self.iteration,
                    trained_by="train/run.py")
        save_pspnet(self.model, self.out / name, meta)

    def plot(self):
        rows = [json.loads(ln) for ln in self.log_path.read_text().splitlines() if ln.strip()] \
            if self.log_path.exists() else []
        plot.write(self.out / "curves.png", rows, self.val_points)

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> float:
        from pspnet_caffe.eval.metrics import Stats, image_stats, summary
        from pspnet_caffe.eval.protocol import Settings, predict, segment
        args, d = self.args, self.d
        items = D.val_samples(args.dataset, args.data_root, args.val_list)
        m = self.model.meta
        settings = Settings(num_classes=args.num_classes, crop_size=m["crop_size"],
                            base_size=m["base_size"], mean_rgb=tuple(m["mean_rgb"]),
                            device=d.device)
        self.model.eval()
        stats = Stats(args.num_classes)
        try:
            for s in tqdm(items[d.rank::d.world], unit="img", desc="val", leave=False,
                          disable=not d.main or args.no_progress):
                img = ds.read_image(s.image)
                lab = ds.read_label(s.label, self.convention, args.num_classes)
                stats.add(image_stats(predict(segment(self.model, img, settings)), lab,
                                      args.num_classes))
        finally:
            self.model.train()
        vec = np.rint(dd.all_sum(stats.to_vector().tolist(), d)).astype(np.int64)
        return float(summary(Stats.from_vector(vec, args.num_classes))["miou"])

    # -- loop ------------------------------------------------------------------------------
    def train(self) -> int:
        from pspnet_caffe.train.step import train_step
        args, d = self.args, self.d
        stop_at = min(args.iters, args.stop_after or args.iters)
        if self.iteration >= stop_at:
            self.say(f"nothing to do: {self.iteration} iterations done")
            return self.finish(stop_at)
        aug = A.recipe(args.augment, args.crop_size, rotate=args.rotate, blur=args.blur,
                       train=args.train_recipe)
        trainset = D.TrainSet(self.items, self.convention, args.num_classes, aug, seed=args.seed,
                              batch_size=args.batch_size, start=self.iteration, stop=stop_at,
                              rank=d.rank, world=d.world)
        cuda = d.device.startswith("cuda")
        batches = D.loader(trainset, workers=args.workers, pin_memory=cuda)
        autocast = _autocast(args, d.device)
        log = open(self.log_path, "a") if d.main else None
        bar = tqdm(total=args.iters, initial=self.iteration, unit="it", dynamic_ncols=True,
                   disable=not d.main or args.no_progress, desc="train")
        interrupted = False
        t_last = time.perf_counter()
        try:
            with Stop() as stop:
                for images, labels in batches:
                    images = images.to(d.device, non_blocking=True)
                    labels = labels.to(d.device, non_blocking=True)
                    if args.channels_last:
                        images = images.contiguous(memory_format=torch.channels_last)
                    normalizer = None
                    if d.world > 1:         # the global batch's valid pixels, shared out
                        g = dd.all_sum([valid_pixels(labels, args.loss_scale)], d)[0]
                        normalizer = max(g, 1.0) / d.world
                    r = train_step(self.net, self.opt, images, labels,
                                   iteration=self.iteration, max_iter=args.iters,
                                   base_lr=args.lr, aux_weight=args.aux_weight,
                                   loss_scale=args.loss_scale, normalizer=normalizer,
                                   scaler=self.scaler, autocast=autocast)
                    loss, main, aux = r["loss"], r["main"], r["aux"]
                    if d.world > 1:
                        loss, main, aux = (v / d.world for v in dd.all_sum([loss, main, aux], d))
                    if not math.isfinite(loss):
                        raise FloatingPointError(f"loss is {loss} at iteration "
                                                 f"{self.iteration + 1} (lower --lr?)")
                    self.iteration += 1
                    now = time.perf_counter()
                    ips = args.batch_size / max(now - t_last, 1e-9)
                    t_last = now
                    if log:
                        log.write(json.dumps({"iter": self.iteration, "lr": r["lr"],
                                              "loss": loss, "main": main, "aux": aux,
                                              "images_per_s": round(ips, 3)}) + "\n")
                        log.flush()
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{r['lr']:.2e}", refresh=False)
                    bar.update(1)
                    stopping = dd.all_sum([stop.requested], d)[0] > 0 if d.world > 1 \
                        else stop.requested
                    if args.val_every and self.iteration % args.val_every == 0 \
                            and self.iteration < args.iters:
                        self.val_step()
                    if self.iteration % args.save_every == 0 or self.iteration == stop_at \
                            or stopping:
                        self.save_checkpoint()
                    if stopping:
                        interrupted = True
                        break
        finally:
            bar.close()
            if log:
                log.close()
        if interrupted:
            self.say(f"interrupted: checkpoint written at iteration {self.iteration} of "
                     f"{args.iters} ({self.out / 'checkpoint.pth'}); --resume goes on")
            return cli.EXIT_INTERRUPTED
        return self.finish(stop_at)

    def val_step(self):
        miou = self.validate()
        self.val_points.append([self.iteration, miou])
        better = self.best is None or miou > self.best
        if better:
            self.best = miou
            self.save_model("best.pth")
        self.say(f"iteration {self.iteration}: val mIoU {100 * miou:.2f}"
                 + (" (best so far: best.pth)" if better else f" (best {100 * self.best:.2f})"))

    def finish(self, stop_at: int) -> int:
        args = self.args
        if self.iteration < args.iters:
            self.say(f"stopped after iteration {self.iteration} of {args.iters} (--stop-after); "
                     f"--resume goes on")
            return 0
        if (args.val or args.val_list) and not any(p[0] == self.iteration
                                                   for p in self.val_points):
            self.val_step()
            self.save_checkpoint()
        self.save_model("model.pth")
        if self.d.main:
            self.plot()
            self.say(f"done: {args.iters} iterations; model {self.out / 'model.pth'}, log "
                     f"{self.log_path}, curves {self.out / 'curves.png'}")
        return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return cli.main(lambda: _main(args), interrupted="interrupted before the first checkpoint "
                    "(nothing to resume from unless an earlier one is in --out)",
                    errors=(ValueError, OSError, FloatingPointError))


def _main(args) -> int:
    d = dd.init(args.device)
    args.device = d.device
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    try:
        if d.main:
            Path(args.out).mkdir(parents=True, exist_ok=True)
        run = Run(args, d)
        run.setup()
        return run.train()
    finally:
        dd.shutdown(d)


if __name__ == "__main__":
    sys.exit(main())
