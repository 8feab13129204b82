"""The datasets: one module per benchmark (voc2012, ade20k, cityscapes) and one for one's own
list-file datasets (listfile), each declaring all of its facts in a `Dataset` (base.py).

    from psp_torch import datasets
    voc = datasets.get("voc")
    voc.classes, voc.crop_size, voc.eval.base_size, voc.train.iterations, voc.samples(root, "val")

Adding a dataset is adding a module with a ``DATASET`` here (registry.py finds it): eval/run.py
and train/run.py take everything from `get(name)` (tests/test_dataset_added.py adds one).
"""
from .base import (IGNORE, INSTANCE_KEY, MS_SCALES, STRIDE_RATE,  # noqa: F401
                   Dataset, DatasetError, EvalDefaults, InstanceScheme, Published, Sample,
                   Split, TrainRecipe, voc_colormap)
from .files import (MAX_PIXELS, image_size, missing_files, read_image,  # noqa: F401
                    read_png_values)
from .registry import discover, get, names, registry  # noqa: F401
