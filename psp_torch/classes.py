"""Class names and colour palettes of the benchmarks, by dataset key (kept for one release:
their home is now the dataset modules, `psp_torch.datasets.<module>.DATASET.classes` /
``.palette``).

- ``CLASS_NAMES[dataset]``: one name per class, in the network's output order.
- ``PALETTES[dataset]``: uint8 array (K, 3), RGB, one colour per class (read-only).
"""
from __future__ import annotations

from .datasets import get, names, voc_colormap  # noqa: F401
from .datasets.ade20k import CLASSES as ADE20K_NAMES  # noqa: F401
from .datasets.cityscapes import CLASSES as CITYSCAPES_NAMES  # noqa: F401
from .datasets.voc2012 import CLASSES as VOC_NAMES  # noqa: F401

CLASS_NAMES = {n: get(n).classes for n in names()}
PALETTES = {n: get(n).palette for n in names()}
