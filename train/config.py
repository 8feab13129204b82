"""A training run's settings: one frozen `TrainConfig`, resolved once from the command line and
the dataset's preset (`from_args`), never changed in place.

The resume identity (`identity`) is derived from it: every field, except those declared with
`exempt(why)` (`psp_torch.identity`: output folder, logging and checkpoint cadence,
--stop-after, --resume itself, the device, ...), and every network option it sets. A new field
is therefore part of the identity, and a resume with another value is refused naming it,
unless whoever adds it says why it cannot change the numbers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from psp_torch import cli
from psp_torch import limits as L
from psp_torch.config import option_defaults, options
from psp_torch.datasets import listfile
from psp_torch.identity import IDENTITY, exempt, identity_fields
from psp_torch.limits import Limits
from . import data as D


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    # data
    data_root: Path = exempt("a moved dataset is the same data (its sample count is checked)")
    dataset: str | None              # a benchmark (its training split, or the convention of list)
    list: Path | None                # one's own list file
    num_classes: int
    class_names: Path | None = exempt("the names go into the model's meta only")
    augment: str
    rotate: bool                     # the dataset's recipe: random rotation on / off
    blur: bool                       # the dataset's recipe: Gaussian blur on / off
    workers: int = exempt("the data order and every draw are functions of (seed, position)")
    val: bool = exempt("validation reads the model and never changes it")
    val_list: Path | None = exempt("validation reads the model and never changes it")
    val_every: int = exempt("validation reads the model and never changes it")
    max_pixels: int = exempt("a budget on the files read: a run within it reads every pixel")
    # model
    init: Path | None
    arch: str | None
    init_backbone: Path | None
    network: dict                    # network options (PSPNetConfig fields declared with
                                     # `option`): with arch every one (the release's unless
                                     # given), with init those given
    # recipe
    iters: int
    batch_size: int
    crop_size: int | None            # None: the --init model's own (`with_crop`)
    lr: float
    momentum: float
    weight_decay: float
    aux_weight: float
    loss_scale: float
    sgd: str
    freeze_bn: bool
    seed: int
    amp: str
    tf32: bool
    # run
    out: Path = exempt("where the outputs go")
    save_every: int = exempt("checkpoints are written between iterations, reading nothing random")
    checkpoint_minutes: float = exempt("the same as save_every, by the clock")
    resume: bool = exempt("going on is the point")
    stop_after: int | None = exempt("stops without changing the schedule")
    device: str = exempt("a run may move to another device (same function; float summation "
                         "order aside)")
    channels_last: bool = exempt("a memory layout (same function; float summation order aside)")
    progress: bool = exempt("a progress bar")
    tensorboard: Path | None = exempt("TensorBoard events: a copy of the log")
    model_limits: Limits = exempt("limits only refuse a file; one within them reads the same",
                                  default=L.DEFAULT)

    @property
    def convention(self) -> str:
        """The label convention: the benchmark's, or one's own (labels as stored)."""
        return self.dataset or listfile.DATASET.name

    @property
    def validating(self) -> bool:
        return bool(self.val or self.val_list)

    @property
    def stop_at(self) -> int:
        return min(self.iters, self.stop_after or self.iters)

    def with_crop(self, crop_size: int) -> "TrainConfig":
        """The config once the model's crop is known (for --init on one's own data)."""
        return dataclasses.replace(self, crop_size=crop_size)


def identity(config: TrainConfig) -> dict:
    """The settings a resumed run must have unchanged: every field not `exempt`, as JSON values
    (paths absolute), the network options among them by their own names (their flags)."""
    fields = identity_fields(config, IDENTITY)
    network = fields.pop("network")
    return {**fields, **network}


def from_args(args) -> TrainConfig:
    """The config of parsed arguments (train/run.py's parser): every default of the dataset's
    recipe (`data.training_facts`, from `psp_torch.datasets`) and the network options given
    (the release's for --arch) filled in, here and nowhere else."""
    facts = D.training_facts(args.dataset)

    def preset(name):
        value = getattr(args, name)
        return facts[name] if value is None else value

    def path(value):
        return None if value is None else Path(value)

    num_classes = args.num_classes if args.num_classes is not None \
        else D.dataset_facts(args.dataset).num_classes
    # crop: given, else the dataset's preset; for --init on one's own data the model's own
    crop = args.crop_size or (facts["crop_size"] if args.arch or args.dataset else None)
    return TrainConfig(
        data_root=Path(args.data_root), dataset=args.dataset, list=path(args.list),
        num_classes=num_classes, class_names=path(args.class_names), augment=args.augment,
        rotate=facts["rotate"], blur=facts["blur"], workers=args.workers, val=args.val,
        val_list=path(args.val_list), val_every=args.val_every, max_pixels=args.max_pixels,
        init=path(args.init), arch=args.arch, init_backbone=path(args.init_backbone),
        network={**(option_defaults() if args.arch else {}),
                 **cli.given_options(args, options())},
        iters=preset("iters"), batch_size=preset("batch_size"),
        crop_size=crop, lr=preset("lr"), momentum=preset("momentum"),
        weight_decay=preset("weight_decay"), aux_weight=preset("aux_weight"),
        loss_scale=args.loss_scale, sgd=args.sgd, freeze_bn=args.freeze_bn, seed=args.seed,
        amp=args.amp, tf32=args.tf32, out=Path(args.out), save_every=args.save_every,
        checkpoint_minutes=args.checkpoint_minutes,
        resume=args.resume, stop_after=args.stop_after, device=args.device,
        channels_last=args.channels_last, progress=not args.no_progress,
        tensorboard=path(args.tensorboard), model_limits=L.from_args(args))
