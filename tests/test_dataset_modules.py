"""psp_torch.datasets: every registered dataset declares every fact of the interface, the
registry finds a dataset added as one new file, and no code in eval/ or train/ compares
against a dataset's name (the drift this package exists to stop)."""
import ast
import dataclasses
import sys
import types
import typing
from pathlib import Path

import numpy as np
import pytest

import psp_torch.datasets as datasets
from psp_torch.datasets import (Dataset, DatasetError, EvalDefaults, InstanceScheme, Published,
                                Split, TrainRecipe, registry)
from psp_torch.datasets import base

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ("voc", "ade20k", "cityscapes")


def _hints(cls):
    return typing.get_type_hints(cls, vars(base))


def _is_instance(value, hint) -> bool:
    """isinstance against a resolved annotation (X | None, tuple, Mapping, ...)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_is_instance(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, origin or hint)


def _check_fields(obj, where: str):
    for f in dataclasses.fields(obj):
        hint = _hints(type(obj))[f.name]
        value = getattr(obj, f.name)
        assert _is_instance(value, hint), f"{where}.{f.name} = {value!r} is not {hint}"
        if dataclasses.is_dataclass(value):
            _check_fields(value, f"{where}.{f.name}")


def test_the_benchmarks_and_ones_own_datasets_are_registered():
    assert set(registry()) == set(BENCHMARKS) | {"custom"}
    assert set(datasets.names()) == set(BENCHMARKS)          # --dataset choices
    for name, d in registry().items():
        module = sys.modules[type(d).__module__] if type(d) is not Dataset else None
        assert d.name == name and (module is None or module.DATASET is d)


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_dataset_declares_every_field_with_its_type(name):
    d = datasets.get(name)
    assert isinstance(d, Dataset) and dataclasses.is_dataclass(d)
    assert set(f.name for f in dataclasses.fields(d)) == set(f.name for f in
                                                             dataclasses.fields(Dataset))
    _check_fields(d, name)
    assert all(isinstance(s, Split) for s in d.splits.values())
    assert isinstance(d.eval, EvalDefaults) and isinstance(d.train, TrainRecipe)
    assert d.instances is None or isinstance(d.instances, InstanceScheme)
    for p in (d.palette, d.label_png_palette):
        if p is not None:
            assert p.dtype == np.uint8 and p.ndim == 2 and p.shape[1] == 3
            assert not p.flags.writeable
    assert all(isinstance(c, str) and c for c in d.classes)
    assert d.eval.split in d.splits or not d.benchmark
    assert 0 < d.eval.stride_rate <= 1 and d.crop_size > 0 and d.eval.base_size > 0
    assert all(s > 0 for s in d.eval.ms_scales)
    for pub in (d.eval.published_ss, d.eval.published_ms):
        assert pub is None or isinstance(pub, Published)
    lo, hi = d.train.scale_range
    assert 0 < lo <= hi and d.train.rotate_range[0] <= d.train.rotate_range[1]
    assert d.train.blur_kernel % 2 == 1
    if d.benchmark:
        assert len(d.classes) == len(set(d.classes)) == d.palette.shape[0] > 0
        assert d.label_ids >= d.num_classes and d.train_split in d.splits
        assert d.train.iterations > 0
        # the codec: class ids -> the dataset's own ids -> class ids
        pred = np.arange(d.num_classes).reshape(1, -1)
        ids = d.to_dataset_ids(pred)
        assert ids.dtype == np.uint8 and ids.max() < d.label_ids
        assert np.array_equal(d.from_dataset_ids(ids), pred)
    else:
        assert d.classes == () and d.train.iterations is None and d.palette.shape == (256, 3)


def test_ones_own_defaults_live_in_the_listfile_module():
    own = datasets.get("custom")
    assert (own.crop_size, own.eval.base_size) == (473, 512)
    three = own.with_classes(["a", "b", "c"])
    assert three.num_classes == 3 and np.array_equal(three.palette, own.palette[:3])


NEW_MODULE = '''
from psp_torch.datasets.base import (Dataset, EvalDefaults, Split, TrainRecipe,
                                     frozen_palette)

DATASET = Dataset(
    name="toyset", title="a dataset added as one file", classes=("sky", "ground"),
    palette=frozen_palette([(0, 0, 255), (0, 255, 0)]), label_ids=2,
    splits={"val": Split(3)}, train_split="val",
    crop_size=33, eval=EvalDefaults(split="val", base_size=64),
    train=TrainRecipe(iterations=10, rotate=False, blur=False),
)
'''


def test_a_dataset_added_as_one_file_is_found(tmp_path, monkeypatch):
    (tmp_path / "toyset.py").write_text(NEW_MODULE)
    (tmp_path / "_helper.py").write_text("DATASET = 'not looked at'\n")
    monkeypatch.setattr(datasets, "__path__", list(datasets.__path__) + [str(tmp_path)])
    monkeypatch.delitem(sys.modules, "psp_torch.datasets.toyset", raising=False)
    try:
        found = datasets.discover()
        assert set(found) == set(registry()) | {"toyset"}
        toy = found["toyset"]
        assert toy.classes == ("sky", "ground") and toy.split("val").images == 3
        _check_fields(toy, "toyset")
        # a second module claiming a taken name is refused, naming the file
        (tmp_path / "twin.py").write_text(NEW_MODULE)
        with pytest.raises(ValueError, match=r"twin\.py: dataset name 'toyset' is taken"):
            datasets.discover()
    finally:
        sys.modules.pop("psp_torch.datasets.toyset", None)
        sys.modules.pop("psp_torch.datasets.twin", None)


def test_a_dataset_declares_each_fact_once():
    """No fact has two homes in a dataset module: the dataset, its evaluation defaults and its
    training recipe share no field (a name or a crop given twice could disagree)."""
    homes = {cls.__name__: {f.name for f in dataclasses.fields(cls)}
             for cls in (Dataset, EvalDefaults, TrainRecipe)}
    for a, b in [("Dataset", "EvalDefaults"), ("Dataset", "TrainRecipe"),
                 ("EvalDefaults", "TrainRecipe")]:
        assert not homes[a] & homes[b], (a, b, homes[a] & homes[b])


def test_unknown_names_are_one_clear_error():
    with pytest.raises(DatasetError, match="unknown dataset 'coco'; expected one of"):
        datasets.get("coco")


def test_the_lower_package_imports_nothing_of_eval_or_train():
    for path in (ROOT / "psp_torch" / "datasets").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith("pspnet_caffe") for n in names), path


# ---------------------------------------------------------------- drift guard

def _name_literals(node) -> list[str]:
    """Dataset names written as literals in a comparison operand (a string, or a tuple /
    list / set of them)."""
    known = set(registry())
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if node.value.lower() in known else []
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [n for e in node.elts for n in _name_literals(e)]
    return []


def name_comparisons(source: str) -> list[tuple[int, str]]:
    """(line, name) of every ==, !=, in, not in comparison with a dataset name literal, and of
    every dict literal keyed by dataset names (a per-dataset table outside its module)."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                hits += [(node.lineno, n) for n in _name_literals(operand)]
        elif isinstance(node, ast.Dict):
            hits += [(node.lineno, n) for k in node.keys if k is not None
                     for n in _name_literals(k)]
    return hits


def test_drift_guard_catches_what_it_guards():
    code = ('a = dataset == "voc"\nb = "cityscapes" != d\nc = d in ("ade20k", "x")\n'
            'd = {"voc": 1}\ne = res["cityscapes"]\nf = names("voc")\n')
    assert name_comparisons(code) == [(1, "voc"), (2, "cityscapes"), (3, "ade20k"), (4, "voc")]


def test_no_dataset_name_comparisons_in_eval_and_train():
    hits = []
    for folder in ("eval", "train"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            hits += [f"{path.relative_to(ROOT)}:{line}: {name!r}"
                     for line, name in name_comparisons(path.read_text())]
    assert not hits, ("compare against a dataset's facts (psp_torch.datasets), not its name:\n"
                      + "\n".join(hits))
