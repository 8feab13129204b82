"""Finding the datasets: every module of this package that defines ``DATASET`` (a `Dataset`).

No central list: a new dataset is a new module file here. Modules whose name starts with "_"
and modules without ``DATASET`` (base, files, registry) are helpers. Names must be unique.
"""
from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from .base import Dataset, DatasetError

PACKAGE = __name__.rpartition(".")[0]


def discover() -> dict[str, Dataset]:
    """Import every module of the package (its current ``__path__``) and collect the
    ``DATASET`` of each, by name, in module-name order."""
    package = importlib.import_module(PACKAGE)
    found: dict[str, Dataset] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        dataset = getattr(module, "DATASET", None)
        if dataset is None:
            continue
        if not isinstance(dataset, Dataset):
            raise TypeError(f"{module.__file__}: DATASET is a {type(dataset).__name__}, not a "
                            f"psp_torch.datasets.Dataset")
        if dataset.name in found:
            raise ValueError(f"{module.__file__}: dataset name {dataset.name!r} is taken")
        found[dataset.name] = dataset
    return found


@cache
def registry() -> dict[str, Dataset]:
    """The datasets of the package, found once."""
    return discover()


def names(benchmarks_only: bool = True) -> tuple[str, ...]:
    """Dataset names (``--dataset`` choices: the benchmarks with a folder layout)."""
    return tuple(n for n, d in registry().items() if d.benchmark or not benchmarks_only)


def get(name: str) -> Dataset:
    """The dataset called ``name``; `DatasetError` naming the known ones otherwise."""
    try:
        return registry()[name]
    except (KeyError, TypeError):
        raise DatasetError(f"unknown dataset {name!r}; expected one of {names()}") from None
