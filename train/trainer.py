"""The training run of a `TrainConfig`: setup, the loop, its outputs.

    Trainer(config, d).setup()     model, optimiser, data, --resume (or a fresh folder)
    Trainer.run()                  iterations until --iters / --stop-after / Ctrl-C; exit status

One iteration (`iteration`): a global batch through `step.train_step` (losses averaged over
the processes; a non-finite loss or weight stops the run: `faults.check_finite`), then
`end_iteration`: the log line to every sink (`train/sinks.py`: log.jsonl, curves.png,
TensorBoard), the progress bar, validation every --val-every, the checkpoint
every --save-every iterations or --checkpoint-minutes, at the stop and on Ctrl-C / SIGTERM
(`faults.Stop`: exit 130 / 143). Every checkpoint goes through `write_checkpoint` (its contents:
`checkpoint_state`), every model file through `save_model`. Validation is eval's own scoring
(`pspnet_caffe.eval.evaluate.evaluate`, single scale with the authors' protocol).

Reproducibility: the data order and each sample's augmentation are functions of (seed,
position in the stream); dropout draws come from torch's RNG, seeded from (seed, rank,
iteration) at the start and saved per process in every checkpoint.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from caffe_proto.printable import printable
from psp_torch import compat
from psp_torch.digest import state_sha256
from psp_torch.io import save_pspnet
from psp_torch.runtime import Dist
from psp_torch import datasets
from pspnet_caffe.eval.evaluate import evaluate
from pspnet_caffe.eval.metrics import summary
from pspnet_caffe.eval.protocol import Settings
from . import augment as A
from . import bn_statistics as B
from . import checkpoint as ck
from . import data as D
from . import distributed as dd
from . import faults as F
from . import model as M
from . import sinks as K
from .config import TrainConfig, identity
from .optim import make_optimizer
from .step import train_step

CHECKPOINT = "checkpoint.pth"
MODEL = "model.pth"
BEST = "best.pth"
LOG = K.LOG
CURVES = K.CURVES


Stop = F.Stop      # SIGINT / SIGTERM: train/faults.py


def valid_pixels(labels: torch.Tensor, loss_scale: float) -> int:
    """Labels the loss counts (255 = ignored), at the loss's sampling (`loss_scale`)."""
    step = int(round(1 / loss_scale))
    lab = labels[:, ::step, ::step] if step > 1 else labels
    return int((lab != datasets.IGNORE).sum())


def autocast_factory(amp: str, device: str):
    """A factory of the autocast context (train_step enters a fresh one per iteration)."""
    if amp == "none":
        return None
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    kind = torch.device(device).type
    return lambda: torch.autocast(device_type=kind, dtype=dtype)


def has_pyramid_bin1(model) -> bool:
    return 1 in tuple(getattr(model.config, "bins", ()))


class Trainer:
    def __init__(self, config: TrainConfig, d: Dist):
        self.config, self.d = config, d
        self.out = Path(config.out)
        self.log_path = self.out / LOG
        self.checkpoint_path = self.out / CHECKPOINT
        self.ckpts = ck.Rotation(self.out)      # checkpoint.pth, checkpoint.prev.pth
        self.iteration, self.val_points, self.best = 0, [], None
        self._rng_restored = False
        # where the progress goes (process 0): log.jsonl, curves.png, TensorBoard events
        self.sinks = K.make(self.out, config.tensorboard) if d.main else []

    def say(self, msg: str):
        if self.d.main:
            tqdm.write(msg, file=sys.stderr)

    # -- model, optimiser, data ------------------------------------------------------------
    def setup(self) -> "Trainer":
        c, d = self.config, self.d
        self.items = D.training_samples(c.dataset, c.data_root, c.list)
        torch.manual_seed(c.seed)
        model = M.build(c, self.say)
        self.config = c = c.with_crop(model.config.crop_size)
        model.meta = M.meta(c, model)
        self.model = model
        self.init_hash = state_sha256(model.state_dict())
        # every setting that changes the numbers, and the data they apply to
        self.identity = {**identity(c), "samples": len(self.items)}
        if c.crop_size % 8 != 1:
            self.say(f"note: crop {c.crop_size} is not of the form 8k+1 (473, 713): the "
                     f"output is not exactly Caffe's zoom-8 grid")
        if c.batch_size % d.world:
            raise ValueError(f"--batch-size {c.batch_size} does not divide by the world "
                             f"size {d.world} (each process takes batch/world images)")
        if not c.freeze_bn and c.batch_size < 2 and has_pyramid_bin1(model):
            raise ValueError(f"--batch-size {c.batch_size}: BN on batch statistics needs at "
                             f"least 2 images per BN batch (the pyramid's 1x1 bin has one value "
                             f"per image); use --freeze-bn or a larger batch")
        if c.freeze_bn:
            B.freeze_bn(model)
        warning = B.bn_warning(c.batch_size, c.freeze_bn)   # BN batch = global batch
        if warning:
            self.say(f"warning: {warning}")
        model.to(d.device)
        if d.world > 1 and not c.freeze_bn:    # BN statistics of the global batch
            self.model = model = B.sync_bn(model)
        if c.channels_last:
            model.to(memory_format=torch.channels_last)
        model.train()
        self.opt = make_optimizer(model, kind=c.sgd, lr=c.lr, momentum=c.momentum,
                                  weight_decay=c.weight_decay, freeze_bn=c.freeze_bn)
        if c.amp == "fp16":
            compat.require(compat.GRAD_SCALER)
        self.scaler = torch.amp.GradScaler(torch.device(d.device).type) \
            if c.amp == "fp16" else None
        has_aux = getattr(model, "aux", None) is not None
        self.net = dd.wrap(model, d, find_unused=has_aux and c.aux_weight == 0)
        if F.resuming(c.resume, self.ckpts):      # --resume, or a torchrun relaunch
            if not c.resume:
                self.say(f"torchrun relaunch {F.restart_count()}: going on from the last "
                         f"checkpoint")
            self.resume()
        elif d.main and self.ckpts.exists():
            raise ValueError(f"{self.checkpoint_path}: a run is already here; --resume "
                             f"goes on with it, or choose another --out")
        else:
            self.tell_sinks("start", None, self.val_points)      # a fresh run
        if not self._rng_restored:
            # dropout draws: per process, from (seed, rank, iteration) so K changes are defined
            torch.manual_seed(int(np.random.SeedSequence(
                [c.seed, 2, d.rank, self.iteration]).generate_state(1)[0]))
        if d.main:
            D.scan_labels(self.items, c.convention, c.num_classes,
                          workers=max(1, c.workers), progress=c.progress,
                          max_pixels=c.max_pixels)
        return self

    # -- checkpoints -----------------------------------------------------------------------
    def resume(self):
        """Go on from the newest readable checkpoint (`checkpoint.Rotation`): the same run
        (`check_same_run`), its state restored."""
        self.restore(*self.ckpts.load(self.say))

    def restore(self, path: Path, c: dict):
        """Model, optimiser, scaler, iteration, validation history and RNG from checkpoint `c`."""
        ck.check_same_run(path, c, self.identity, self.init_hash)
        try:      # the same settings and initial model: a state that does not fit is damage
            self.model.load_state_dict(c["model"])
            self.opt.load_state_dict(c["optimizer"])
            if self.scaler is not None and c.get("scaler"):
                self.scaler.load_state_dict(c["scaler"])
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ck.ResumeError(f"{path}: its model or optimizer state does not fit this run "
                                 f"({printable((str(exc).strip().splitlines() or [''])[0], 160)})"
                                 f"; refusing to resume") from None
        self.iteration = int(c["iteration"])
        self.val_points, self.best = list(c.get("val") or []), c.get("best_miou")
        rng = c.get("rng") or {}
        self._rng_restored = rng.get("world") == self.d.world
        if self._rng_restored:
            torch.set_rng_state(rng["torch"][self.d.rank])
            if rng.get("cuda") and self.d.device.startswith("cuda"):
                torch.cuda.set_rng_state(rng["cuda"][self.d.rank], self.d.device)
        else:
            self.say(f"note: the checkpoint was written by {rng.get('world')} process(es), this "
                     f"run has {self.d.world}: dropout draws restart from (seed, rank, "
                     f"iteration)")
        self.say(f"resuming {path} at iteration {self.iteration} of {self.config.iters}")
        self.tell_sinks("start", self.iteration, self.val_points)

    def tell_sinks(self, event: str, *args):
        """Every sink hears `event` (`train/sinks.py`: start, iteration, validation, flush);
        a failed write is one line naming the sink's file and the last good checkpoint."""
        for sink in self.sinks:
            with F.write_failure(sink.path, self.ckpts.last_good):
                getattr(sink, event)(*args)

    def checkpoint_state(self) -> dict | None:
        """What a checkpoint holds (every process takes part: the RNG states are gathered);
        None on the processes that do not write."""
        d = self.d
        states = dd.gather_objects(torch.get_rng_state(), d)
        cuda = dd.gather_objects(torch.cuda.get_rng_state(d.device), d) \
            if d.device.startswith("cuda") else None
        if not d.main:
            return None
        return dict(iteration=self.iteration, model=self.model.state_dict(),
                    optimizer=self.opt.state_dict(),
                    scaler=self.scaler.state_dict() if self.scaler else None,
                    rng={"torch": states, "cuda": cuda, "world": d.world},
                    recipe=self.identity, init_hash=self.init_hash, val=self.val_points,
                    best_miou=self.best)

    def write_checkpoint(self):
        """Every checkpoint is written here (collective: all processes call it)."""
        state = self.checkpoint_state()
        if state is None:
            return
        F.check_finite(0.0, self.model, self.iteration, self.ckpts.last_good())
        with F.write_failure(self.checkpoint_path, self.ckpts.last_good):
            self.ckpts.save(**state)
        self.tell_sinks("flush")            # curves redrawn, events flushed

    def save_model(self, name: str):
        """A model file (rank 0) in the project's format, with the recipe and the iteration."""
        if not self.d.main:
            return
        meta = dict(self.model.meta, recipe=self.identity, iteration=self.iteration,
                    trained_by="train/run.py")
        F.check_finite(0.0, self.model, self.iteration, self.ckpts.last_good())
        with F.write_failure(self.out / name, self.ckpts.last_good):
            save_pspnet(self.model, self.out / name, meta)

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> float:
        """Single-scale mIoU on the validation samples with eval's protocol and scoring."""
        c, m = self.config, self.model.meta
        items = D.val_samples(c.dataset, c.data_root, c.val_list)
        settings = Settings(num_classes=c.num_classes, crop_size=m["crop_size"],
                            base_size=m["base_size"], mean_rgb=tuple(m["mean_rgb"]),
                            device=self.d.device)
        self.model.eval()
        try:
            stats = evaluate(self.model, items, c.convention, settings, self.d, workers=c.workers,
                             progress=c.progress, max_pixels=c.max_pixels)
        finally:
            self.model.train()
        return float(summary(stats)["miou"])

    def val_step(self):
        miou = self.validate()
        self.val_points.append([self.iteration, miou])
        self.tell_sinks("validation", self.iteration, miou)
        better = self.best is None or miou > self.best
        if better:
            self.best = miou
            self.save_model(BEST)
        self.say(f"iteration {self.iteration}: val mIoU {100 * miou:.2f}"
                 + (" (best so far: best.pth)" if better else f" (best {100 * self.best:.2f})"))

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        """Iterations until --iters, --stop-after or Ctrl-C; the exit status."""
        c, d = self.config, self.d
        stop_at = c.stop_at
        if self.iteration >= stop_at:
            self.say(f"nothing to do: {self.iteration} iterations done")
            return self.finish()
        aug = A.recipe(c.augment, c.crop_size, rotate=c.rotate, blur=c.blur,
                       train=D.dataset_facts(c.dataset).train)
        trainset = D.TrainSet(self.items, c.convention, c.num_classes, aug, seed=c.seed,
                              batch_size=c.batch_size, start=self.iteration, stop=stop_at,
                              rank=d.rank, world=d.world, max_pixels=c.max_pixels)
        batches = D.loader(trainset, workers=c.workers, pin_memory=d.device.startswith("cuda"))
        self.autocast = autocast_factory(c.amp, d.device)
        self._bar = tqdm(total=c.iters, initial=self.iteration, unit="it", dynamic_ncols=True,
                         disable=not d.main or not c.progress, desc="train")
        self._t_last = time.perf_counter()
        self.cadence = F.Cadence(c.save_every, c.checkpoint_minutes, time.monotonic())
        self.stopped = None
        try:
            with F.Stop() as self.stop:
                for images, labels in batches:
                    result = self.iteration_step(images, labels)
                    self.iteration += 1
                    self.stopped = self.end_iteration(result)
                    if self.stopped:
                        break
        finally:
            self._bar.close()
        if self.stopped:
            self.say(F.stop_line(self.stopped, self.iteration, c.iters, self.checkpoint_path))
            return self.stopped
        return self.finish()

    def iteration_step(self, images, labels) -> dict:
        """One update on this process's share of the global batch: {"loss", "main", "aux",
        "lr"}, the losses averaged over the processes."""
        c, d = self.config, self.d
        images = images.to(d.device, non_blocking=True)
        labels = labels.to(d.device, non_blocking=True)
        if c.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        normalizer = None
        if d.world > 1:         # the global batch's valid pixels, shared out
            g = dd.all_sum([valid_pixels(labels, c.loss_scale)], d)[0]
            normalizer = max(g, 1.0) / d.world
        r = train_step(self.net, self.opt, images, labels, iteration=self.iteration,
                       max_iter=c.iters, base_lr=c.lr, aux_weight=c.aux_weight,
                       loss_scale=c.loss_scale, normalizer=normalizer, scaler=self.scaler,
                       autocast=self.autocast)
        if d.world > 1:
            r["loss"], r["main"], r["aux"] = (
                v / d.world for v in dd.all_sum([r["loss"], r["main"], r["aux"]], d))
        # a non-finite loss or weight: stop before anything is written from them
        F.check_finite(r["loss"], self.model, self.iteration + 1, self.ckpts.last_good())
        return r

    def end_iteration(self, r: dict) -> int:
        """After update `self.iteration`: log, validate, checkpoint on their cadence (iterations,
        rank 0's clock). The exit status when the run stops here (Ctrl-C 130 / SIGTERM 143,
        agreed by all processes; checkpoint written), else 0."""
        c, d = self.config, self.d
        now = time.perf_counter()
        ips = c.batch_size / max(now - self._t_last, 1e-9)
        self._t_last = now
        self.log_iteration({"iter": self.iteration, "lr": r["lr"], "loss": r["loss"],
                            "main": r["main"], "aux": r["aux"], "images_per_s": round(ips, 3)})
        self._bar.set_postfix(loss=f"{r['loss']:.4f}", lr=f"{r['lr']:.2e}", refresh=False)
        self._bar.update(1)
        # [SIGINT, SIGTERM, rank 0's clock says checkpoint], agreed over the processes
        flags = [*self.stop.flags(), int(d.main and self.cadence.by_clock(time.monotonic()))]
        flags = dd.all_sum(flags, d) if d.world > 1 else flags
        stopping = flags[0] + flags[1] > 0
        if c.val_every and self.iteration % c.val_every == 0 and self.iteration < c.iters:
            self.val_step()
        if self.cadence.by_iteration(self.iteration) or flags[2] > 0 \
                or self.iteration == c.stop_at or stopping:
            self.write_checkpoint()
            self.cadence.saved(time.monotonic())
        return F.stop_status(flags) if stopping else 0

    def close_sinks(self):
        for sink in self.sinks:
            sink.close()

    def log_iteration(self, row: dict):
        self.tell_sinks("iteration", row)

    def finish(self) -> int:
        c = self.config
        if self.iteration < c.iters:
            self.say(f"stopped after iteration {self.iteration} of {c.iters} (--stop-after); "
                     f"--resume goes on")
            return 0
        if c.validating and not any(p[0] == self.iteration for p in self.val_points):
            self.val_step()
            self.write_checkpoint()
        self.save_model(MODEL)
        self.tell_sinks("flush")
        if self.d.main:
            self.say(f"done: {c.iters} iterations; model {self.out / MODEL}, log "
                     f"{self.log_path}, curves {self.out / CURVES}"
                     + (f", TensorBoard {c.tensorboard}" if c.tensorboard else ""))
        return 0


def train(config: TrainConfig) -> int:
    """The whole run under torchrun's process group (or none): the exit status."""
    d = dd.init(config.device)
    if d.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = config.tf32
        torch.backends.cudnn.allow_tf32 = config.tf32
    try:
        if d.main:
            Path(config.out).mkdir(parents=True, exist_ok=True)
        run = Trainer(config, d)
        try:
            return run.setup().run()
        finally:
            run.close_sinks()
    finally:
        dd.shutdown(d)
