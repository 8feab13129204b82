"""Training data: the benchmarks' training splits or one's own list file, checked up front, and
a data order that depends only on the seed and the iteration.

- Files, label conventions and recipes are the dataset modules' (`psp_torch.datasets`): each
  benchmark's training split (ADE20K
  ``training``, VOC ``train_aug``, Cityscapes ``train``); any dataset as a list file
  (``image label`` per line relative to the data root) with the ``custom`` convention
  (labels stored as 0..N-1, 255 = ignored) or a benchmark's.
- `scan_labels` reads every label before training starts and names each file holding a value
  outside 0..N-1 and 255, with the values.
- Data order: the training stream is a sequence of epochs, each a permutation of the samples
  drawn from (seed, epoch); global batch i holds stream positions i*B .. i*B+B-1, whatever the
  number of processes; rank r of K takes positions i*B + r*B/K .. i*B + (r+1)*B/K - 1. A
  sample's augmentation is drawn from (seed, position) (`augment.sample_rng`). Nothing about
  the order needs saving beyond the seed and the iteration.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from tqdm import tqdm

from psp_torch import datasets
from psp_torch.datasets import DatasetError, Sample, listfile
from . import augment as A


def dataset_facts(dataset: str | None) -> datasets.Dataset:
    """The dataset whose recipe and class facts a run uses: a benchmark by name, one's own
    (None / custom) otherwise."""
    return datasets.get(dataset) if dataset is not None else listfile.DATASET


def training_facts(dataset: str | None) -> dict:
    """The per-dataset training facts (crop, iterations, rotation and blur, batch, lr, aux
    weight, momentum, weight decay; the augmentation's ranges in ``recipe``), read from the
    dataset (`psp_torch.datasets`: its crop and `TrainRecipe`). One's own dataset (None):
    the paper's recipe with rotation and blur, crop 473, no iteration count (the user gives
    --iters)."""
    facts = dataset_facts(dataset)
    r = facts.train
    return {"crop_size": facts.crop_size, "iters": r.iterations, "rotate": r.rotate,
            "blur": r.blur, "batch_size": r.batch_size, "lr": r.base_lr,
            "aux_weight": r.aux_weight, "momentum": r.momentum,
            "weight_decay": r.weight_decay, "recipe": r}


def class_facts(dataset: str | None, num_classes: int, class_names=None) -> dict:
    """A trained model's class meta: the benchmark's names, palette and base size when the
    classes are the benchmark's (``dataset`` None otherwise); else one's own: names from the
    ``class_names`` file (or ``class k``), the first N colours of one's own palette, one's
    own base size."""
    facts = dataset_facts(dataset)
    if facts.benchmark and facts.num_classes == num_classes:
        return {"dataset": facts.name, "class_names": list(facts.classes),
                "palette": facts.palette.tolist(), "base_size": facts.eval.base_size}
    own = listfile.DATASET
    names = read_class_names(class_names, num_classes) if class_names \
        else listfile.default_class_names(num_classes)
    return {"dataset": None, "class_names": names,
            "palette": own.with_classes(names).palette.tolist(),
            "base_size": own.eval.base_size}


def training_samples(dataset: str | None, root, list_file=None) -> list[Sample]:
    """The training split of a benchmark, or the samples of a list file (each with a label)."""
    if list_file is not None:
        items = listfile.read_list(root, list_file)
        unlabelled = [str(s.image) for s in items if s.label is None]
        if unlabelled:
            raise DatasetError(f"{list_file}: {len(unlabelled)} line(s) without a label "
                                  f"(training needs 'image label'), first: {unlabelled[0]}")
    else:
        facts = datasets.get(dataset)
        items = facts.samples(root, facts.train_split)
    if not items:
        raise DatasetError(f"{list_file or root}: no training samples")
    return items


def val_samples(dataset: str | None, root, list_file=None) -> list[Sample]:
    if list_file is not None:
        return listfile.read_list(root, list_file)
    return datasets.get(dataset).samples(root, "val")


read_class_names = listfile.read_class_names    # one reader for train and eval


def _label_values(sample: Sample, convention: str, max_pixels: int | None) -> np.ndarray:
    lab = datasets.get(convention).decode_label(
        datasets.read_png_values(sample.label, max_pixels), sample.label)
    return np.unique(lab)


def scan_labels(items, convention: str, num_classes: int, *, workers: int = 4,
                progress: bool = True, max_pixels: int | None = datasets.MAX_PIXELS) -> np.ndarray:
    """Read every label; raise `DatasetError` naming the files with values outside 0..N-1 and
    255 (after the dataset's convention), or above `max_pixels`. Returns the sorted values
    seen."""
    missing = datasets.missing_files(items)
    if missing:
        raise DatasetError(f"{len(missing)} training file(s) missing or unreadable, first: "
                              f"{missing[0]}")
    bad, seen = [], set()
    with ThreadPoolExecutor(max(1, workers)) as pool:
        values = pool.map(lambda s: _label_values(s, convention, max_pixels), items)
        for s, v in tqdm(zip(items, values), total=len(items), unit="label",
                         desc="checking labels", disable=not progress, leave=False):
            seen.update(v.tolist())
            out = v[(v >= num_classes) & (v != datasets.IGNORE)]
            if out.size:
                bad.append(f"{s.label}: {out.tolist()[:10]}")
    if bad:
        raise DatasetError(
            f"label values outside 0..{num_classes - 1} and 255 (after the {convention} "
            f"convention) in {len(bad)} file(s): " + "; ".join(bad[:5])
            + (f"; ... and {len(bad) - 5} more" if len(bad) > 5 else ""))
    return np.array(sorted(seen))


# ---------------------------------------------------------------- data order

def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([int(seed), 0, int(epoch)]).permutation(n)


def sample_index(seed: int, position: int, n: int) -> int:
    """Index of the sample at a position of the training stream."""
    epoch, k = divmod(int(position), n)
    return int(epoch_order(seed, epoch, n)[k])


def rank_positions(iteration: int, batch_size: int, rank: int = 0, world: int = 1) -> range:
    """Stream positions of this rank's share of global batch ``iteration``."""
    if batch_size % world:
        raise ValueError(f"--batch-size {batch_size} does not divide by the world size {world}")
    local = batch_size // world
    start = iteration * batch_size + rank * local
    return range(start, start + local)


class TrainSet(torch.utils.data.Dataset):
    """Item k = the k-th sample this rank loads from iteration ``start`` on: (network input
    3xSxS float32, label SxS int64). Stateless: a worker can produce any item. Images and
    labels above `max_pixels` are refused before they are decoded."""

    def __init__(self, items, convention: str, num_classes: int, aug: A.Augment, *, seed: int,
                 batch_size: int, start: int, stop: int, rank: int = 0, world: int = 1,
                 max_pixels: int | None = datasets.MAX_PIXELS):
        self.items, self.convention, self.num_classes, self.aug = items, convention, num_classes, aug
        self.seed, self.batch_size, self.start, self.stop = seed, batch_size, start, stop
        self.rank, self.world, self.max_pixels = rank, world, max_pixels
        self.local = batch_size // world
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self):
        return max(0, self.stop - self.start) * self.local

    def position(self, k: int) -> int:
        it, j = divmod(k, self.local)
        return rank_positions(self.start + it, self.batch_size, self.rank, self.world)[j]

    def _index(self, position: int) -> int:
        epoch, k = divmod(position, len(self.items))
        if epoch not in self._orders:
            self._orders = {epoch: epoch_order(self.seed, epoch, len(self.items))}
        return int(self._orders[epoch][k])

    def __getitem__(self, k):
        pos = self.position(k)
        s = self.items[self._index(pos)]
        img = datasets.read_image(s.image, self.max_pixels)
        lab = datasets.get(self.convention).read_label(s.label, self.num_classes, self.max_pixels)
        if lab.shape != img.shape[:2]:
            raise DatasetError(f"{s.label}: label is {lab.shape[0]}x{lab.shape[1]} (rows x "
                                  f"cols), its image {s.image} is {img.shape[0]}x{img.shape[1]}")
        img, lab = A.apply(self.aug, img, lab, A.sample_rng(self.seed, pos))
        return (torch.from_numpy(A.network_input(img, self.aug.mean_rgb)),
                torch.from_numpy(lab.astype(np.int64)))


def _worker_init(_):
    """Ctrl-C in a terminal reaches the workers too: they leave it to the main process, which
    finishes the iteration and writes a checkpoint."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def loader(trainset: TrainSet, *, workers: int, pin_memory: bool = False):
    """Batches of this rank's share, in order; own generator (never the global RNG's)."""
    return torch.utils.data.DataLoader(
        trainset, batch_size=trainset.local, shuffle=False, num_workers=workers,
        pin_memory=pin_memory, drop_last=False, generator=torch.Generator(),
        prefetch_factor=4 if workers else None, persistent_workers=False,
        worker_init_fn=_worker_init if workers else None)
