"""CaffeNet: any Caffe net made of supported layers as one nn.Module (TEST phase).

Blobs are routed by name as in Caffe's ``Net``: each layer reads its bottoms
and writes its tops into one name -> tensor table, so in-place layers (top ==
bottom) simply overwrite the name. Shapes are inferred at build time from the
declared input shapes with each layer's own output-size arithmetic (the same
functions the forward uses); any other input size or batch is re-inferred per
call, as Caffe's ``Reshape`` would.

State-dict mapping (stable): Caffe blob ``i`` of layer ``L`` lives at
``layers.<module_key(L)>.<BLOBS[i]>`` where ``module_key`` replaces every
character outside ``[A-Za-z0-9_]`` with ``_`` (``conv1_1_3x3_s2/bn`` ->
``conv1_1_3x3_s2_bn``), adding ``_2``, ``_3`` ... only if two names collide.
Blob names per type: Convolution/Deconvolution/InnerProduct ``weight``,
``bias``; BN ``slope``, ``bias``, ``mean``, ``var`` (mean and var are
buffers); BatchNorm ``mean``, ``var``, ``scale_factor`` (buffers); Scale
``weight``, ``bias``; Bias ``bias``; PReLU ``weight``. Every tensor keeps its
Caffe shape (BN: 1xCx1x1). ``CaffeNet.blob_keys`` lists the mapping.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from caffe_proto import load_prototxt, load_weights
from caffe_proto.limits import DEFAULT, Limits, shape_count
from caffe_proto.printable import printable

from ..layers import ALIASES, LAYER_TYPES, LayerError, layer_class
from ..layers.input import Input
from ..metadata import generic_meta, source_meta

_TEST = 1   # caffe.Phase.TEST


def module_key(name: str, taken) -> str:
    """The ModuleDict key of a Caffe layer name (see the module docstring)."""
    return ModuleKeys(taken).key(name)


class ModuleKeys:
    """`module_key` for one net's layers in turn, in time linear in their number.

    The keys taken so far are kept (not rebuilt per layer), and each base remembers the
    last suffix it gave, so that n names that all clean to one base (``a/1``, ``a-1``, ...)
    probe n keys in all, not n^2 / 2. `probes` counts the keys tried (each a set lookup)."""

    def __init__(self, taken=()):
        self.taken = set(taken)
        self.next_suffix: dict[str, int] = {}
        self.probes = 0

    def key(self, name: str) -> str:
        base = re.sub(r"[^0-9A-Za-z_]", "_", name) or "_"
        n = self.next_suffix.get(base, 1)
        key = base if n == 1 else f"{base}_{n}"
        self.probes += 1
        while key in self.taken:
            n += 1
            key = f"{base}_{n}"
            self.probes += 1
        self.next_suffix[base] = n + 1
        self.taken.add(key)
        return key


# Attribute names of a ModuleDict itself (methods, internals): never a layer's key.
_RESERVED = frozenset(dir(nn.ModuleDict()))


def _rule_met(rule) -> bool:
    """Caffe's StateMeetsRule for the TEST phase, level 0, no stages."""
    if rule.HasField("phase") and rule.phase != _TEST:
        return False
    if rule.HasField("min_level") and 0 < rule.min_level:
        return False
    if rule.HasField("max_level") and 0 > rule.max_level:
        return False
    return not rule.stage       # a required stage is never set here


def in_test_phase(layer) -> bool:
    """Caffe's FilterNet: include rules (any met) else exclude rules (none met)."""
    p = layer.param
    include = list(getattr(p, "include", []))
    if include:
        return any(_rule_met(r) for r in include)
    return not any(_rule_met(r) for r in getattr(p, "exclude", []))


@dataclass(frozen=True)
class Step:
    """One layer of the plan: its module key, Caffe name and type, bottoms, tops."""
    key: str
    name: str
    type: str
    bottom: tuple[str, ...]
    top: tuple[str, ...]


@dataclass
class WeightReport:
    """What ``load_caffe_weights`` did, by layer name (as Caffe's CopyTrainedLayersFrom)."""
    loaded: list[str] = field(default_factory=list)    # copied
    ignored: list[str] = field(default_factory=list)   # in the file, not in this net
    missing: list[str] = field(default_factory=list)   # have blobs here, not in the file


def read_weights(path, *, limits: Limits = DEFAULT):
    """A caffemodel or Caffe HDF5 weights file (told apart by content) -> `caffe_proto.Net`."""
    return load_weights(path, limits=limits)


class OverBudget(LayerError):
    """A size of the net above its `caffe_proto.limits.Limits` (the message is complete)."""


def named(name: str, type_: str) -> str:
    """``'conv1' (Convolution)``: a layer as messages show it, made safe to print."""
    return f"'{printable(name)}' ({printable(type_)})"


def supported_types_text() -> str:
    aliases = ", ".join(f"{a} -> {t}" for a, t in sorted(ALIASES.items()))
    return f"{', '.join(sorted(LAYER_TYPES))} (aliases: {aliases})"


class CaffeNet(nn.Module):
    """A Caffe ``Net`` run by PyTorch with Caffe's arithmetic.

    ``cnet(data=x)`` returns a dict of the net's output blobs (those no layer
    consumes, as in Caffe); ``outputs="all"`` or a list of blob names returns
    those blobs instead (the value after the whole forward, as Caffe keeps it
    for in-place chains); ``cnet(x)`` works for a one-input net and returns the
    tensor itself when the net has one output.
    """

    def __init__(self, net, weights=None, *, input_shapes=None, limits: Limits = DEFAULT):
        """``weights``: a weights `Net` or a path; ``input_shapes``: {input name: shape}
        for inputs the net does not declare with a shape (a caffemodel used as the
        structure has input names only) or to build for another size. ``limits``
        (`caffe_proto.limits`): the layer count, each layer's and the net's parameter
        values and each blob's values at the built size are checked against it before
        anything is allocated."""
        super().__init__()
        self.limits = limits
        self._keys = ModuleKeys(_RESERVED)
        self._values = 0                      # parameter and buffer values built so far
        self._given_shapes = {k: tuple(int(d) for d in v) for k, v in (input_shapes or {}).items()}
        self.net_name, self.dialect, self.source = net.name, net.dialect, net.source
        self.layers = nn.ModuleDict()
        self.steps: list[Step] = []
        self.module_keys: dict[str, str] = {}
        self.input_shapes: dict[str, tuple[int, ...]] = {}
        self.weight_report: WeightReport | None = None
        self.meta: dict = {}                  # filled by from_files and psp_torch.load
        self._build(net)
        if weights is not None:
            self.weight_report = self.load_caffe_weights(weights, limits=limits)

    # -- construction ---------------------------------------------------------------------

    def _fail(self, layer, message):
        return LayerError(f"{self.source}: layer {named(layer.name, layer.type)}: {message}")

    def _build(self, net):
        problem = self.limits.layers_problem(len(net.layers))
        if problem:
            raise LayerError(f"{self.source}: {problem}")
        layers = [layer for layer in net.layers if in_test_phase(layer)]
        unsupported = [f"'{printable(layer.name)}' (type '{printable(layer.type)}')"
                       for layer in layers if layer_class(layer.type) is None]
        if unsupported:
            raise LayerError(f"{self.source}: unsupported layer type: layer "
                             f"{', layer '.join(unsupported)}; CaffeNet supports "
                             f"{supported_types_text()}")
        shapes = self._declared_inputs(net, layers)
        seen = set()
        for layer in layers:
            if layer.name in seen:
                raise self._fail(layer, "a second layer with this name (weights are matched "
                                        "by layer name)")
            seen.add(layer.name)
            self._add_layer(layer, shapes)
        self.blob_shapes = shapes
        self.output_names = self._net_outputs()
        self.blob_names = self._all_blob_names()
        self._last_read = {b: i for i, step in enumerate(self.steps) for b in step.bottom}

    def _declared_inputs(self, net, layers) -> dict:
        """Shapes of the net's inputs: ``input:`` fields and Input layers, or given ones."""
        input_tops = {t for layer in layers if layer.type == "Input" for t in layer.top}
        unknown = set(self._given_shapes) - set(net.inputs) - input_tops
        if unknown:
            raise LayerError(f"{self.source}: input_shapes names {sorted(unknown)}, which are "
                             f"not inputs of the net ({printable(list(net.inputs))})")
        shapes = {}
        for name, shape in net.inputs.items():
            shape = self._given_shapes.get(name, shape)
            if not shape:
                raise LayerError(f"{self.source}: input '{printable(name)}' has no declared "
                                 f"shape; pass input_shapes={{'{printable(name)}': (N, C, H, W)}}")
            shapes[name] = self.input_shapes[name] = self._checked_shape(
                shape, lambda: f"input '{printable(name)}'")
        return shapes

    def _checked_shape(self, shape, what) -> tuple[int, ...]:
        """A blob's shape, its values within the budget (checked before any forward);
        `what()` names the blob in the message."""
        shape = tuple(int(d) for d in shape)
        count = shape_count(shape)
        if count > self.limits.values:
            problem = self.limits.values_problem(count, f"{what()}: shape {shape} has")
            raise OverBudget(f"{self.source}: {problem}")
        return shape

    def _checked_module(self, cls, layer, bottom_shapes):
        """The layer's module, built for real only after a copy on the meta device (no
        memory) showed its parameters, and the net's so far, within the budget (a layer
        type without Caffe blobs has no parameters to check)."""
        if not cls.BLOBS:
            return cls.from_layer(layer, bottom_shapes)
        with torch.device("meta"):
            probe = cls.from_layer(layer, bottom_shapes)
        count = sum(t.numel() for t in (*probe.parameters(), *probe.buffers()))
        del probe
        self._values += count
        where = f"{self.source}: layer {named(layer.name, layer.type)}"
        for problem in (self.limits.values_problem(count, "its parameters have"),
                        self.limits.values_problem(self._values, "the net's parameters up to "
                                                                 "it have")):
            if problem:
                raise OverBudget(f"{where}: {problem}")
        return cls.from_layer(layer, bottom_shapes)

    def _add_layer(self, layer, shapes: dict) -> None:
        """Build one layer's module from its bottom shapes; record its tops' shapes."""
        cls = layer_class(layer.type)
        for b in layer.bottom:
            if b not in shapes:
                raise self._fail(layer, f"bottom '{printable(b)}' is neither an input nor the "
                                        "top of an earlier layer")
        bottom_shapes = [shapes[b] for b in layer.bottom]
        if cls is Input and all(t in self._given_shapes for t in layer.top):
            for name in layer.top:                          # shapes given by the caller
                shapes[name] = self.input_shapes[name] = self._given_shapes[name]
            return
        try:
            module = self._checked_module(cls, layer, bottom_shapes)
            top_shapes = module.output_shapes(bottom_shapes)
        except OverBudget:
            raise
        except (ValueError, TypeError, ZeroDivisionError) as exc:
            raise self._fail(layer, f"{exc} (bottom shapes "
                                    f"{[tuple(s) for s in bottom_shapes]})") from exc
        if len(top_shapes) != len(layer.top):
            raise self._fail(layer, f"has {len(layer.top)} tops, the layer makes "
                                    f"{len(top_shapes)}")
        top_shapes = [self._checked_shape(s, lambda t=t: f"layer {named(layer.name, layer.type)}"
                                                         f": top '{printable(t)}'")
                      for t, s in zip(layer.top, top_shapes)]
        if isinstance(module, Input):
            for name, shape in zip(layer.top, top_shapes):
                shapes[name] = self.input_shapes[name] = self._given_shapes.get(name, tuple(shape))
            return
        key = self._keys.key(layer.name)
        self.layers[key] = module
        self.module_keys[layer.name] = key
        self.steps.append(Step(key, layer.name, layer.type, tuple(layer.bottom),
                               tuple(layer.top)))
        shapes.update(zip(layer.top, (tuple(s) for s in top_shapes)))

    def _net_outputs(self) -> list[str]:
        """Caffe's rule: blobs still available (not consumed) after the last layer."""
        available = dict.fromkeys(self.input_shapes)
        for step in self.steps:
            for b in step.bottom:
                available.pop(b, None)
            for t in step.top:
                available[t] = None
        return list(available)

    def _all_blob_names(self) -> list[str]:
        names = dict.fromkeys(self.input_shapes)
        for step in self.steps:
            names.update(dict.fromkeys(step.top))
        return list(names)

    @classmethod
    def from_files(cls, prototxt, weights=None, *, input_shapes=None,
                   allow_missing: bool = False, limits: Limits = DEFAULT) -> "CaffeNet":
        """Build from a deploy prototxt; weights (caffemodel or .h5) copied by layer name.
        Like `psp_torch.load`: in eval mode, with ``meta`` (generic: the net's name, and the
        weights file's name and sha256). A learnable layer the weights file lacks is an error
        naming it, unless ``allow_missing`` (then it keeps its initial values and is listed
        in ``weight_report.missing``)."""
        net = load_prototxt(prototxt, limits=limits)
        model = cls(net, weights, input_shapes=input_shapes, limits=limits)
        missing = model.weight_report.missing if model.weight_report else []
        if missing and not allow_missing:
            types = {s.name: s.type for s in model.steps}
            raise LayerError(f"{weights}: {len(missing)} learnable layer(s) of the prototxt have "
                             f"no weights in it: "
                             + ", ".join(f"{printable(n)} ({printable(types[n])})" for n in missing)
                             + " (allow_missing=True keeps their initial values)")
        model.meta = {**generic_meta(net.name or "caffenet"), **source_meta(weights),
                      "config_from": "prototxt"}
        return model.eval()

    # -- weights --------------------------------------------------------------------------

    def load_caffe_weights(self, weights, *, limits: Limits | None = None) -> WeightReport:
        """Copy blobs from a weights `Net` (or a path) by layer name, as Caffe does.

        Layers of the file this net lacks (training branches, Caffe's Split
        layers) are ignored and listed; a blob count or shape mismatch raises
        naming the layer and both shapes; legacy 4-D shapes equal after dropping
        leading 1s are accepted.
        """
        if isinstance(weights, (str, os.PathLike)):
            weights = read_weights(weights, limits=limits or self.limits)
        report = WeightReport()
        found = set()
        for layer in weights.layers:
            key = self.module_keys.get(layer.name)
            if key is None:
                report.ignored.append(layer.name)
                continue
            found.add(layer.name)
            self.layers[key].load_blobs(
                layer.blobs, f"{weights.source}: layer {named(layer.name, layer.type)}: ")
            report.loaded.append(layer.name)
        report.missing = [s.name for s in self.steps
                          if s.name not in found and self.layers[s.key].blob_tensors()]
        return report

    @property
    def blob_keys(self) -> dict[tuple[str, int], str]:
        """(Caffe layer name, blob index) -> state_dict key."""
        out = {}
        for step in self.steps:
            module = self.layers[step.key]
            names = [n for n in module.BLOBS if getattr(module, n, None) is not None]
            for i, n in enumerate(names):
                out[(step.name, i)] = f"layers.{step.key}.{n}"
        return out

    def caffe_blobs(self) -> dict[str, list]:
        """Layer name -> its blobs as float32 numpy arrays in Caffe shapes (for writers)."""
        return {s.name: [t.detach().float().cpu().numpy() for t in
                         self.layers[s.key].blob_tensors()] for s in self.steps
                if self.layers[s.key].blob_tensors()}

    # -- shapes ---------------------------------------------------------------------------

    def infer_shapes(self, **input_shapes) -> dict[str, tuple[int, ...]]:
        """Every blob's shape for the given input shapes (default: the declared ones)."""
        unknown = set(input_shapes) - set(self.input_shapes)
        if unknown:
            raise KeyError(f"not inputs of this net: {sorted(unknown)}; inputs: "
                           f"{list(self.input_shapes)}")
        shapes = {n: tuple(input_shapes.get(n, s)) for n, s in self.input_shapes.items()}
        for step in self.steps:
            bottom = [shapes[b] for b in step.bottom]
            try:
                tops = self.layers[step.key].output_shapes(bottom)
            except (ValueError, ZeroDivisionError) as exc:
                raise LayerError(f"{self.source}: layer {named(step.name, step.type)}: {exc} "
                                 f"(bottom shapes {bottom})") from exc
            shapes.update(zip(step.top, (tuple(t) for t in tops)))
        return shapes

    # -- forward --------------------------------------------------------------------------

    def _wanted(self, outputs) -> list[str]:
        if outputs is None:
            return self.output_names
        if outputs == "all":
            return self.blob_names
        names = [outputs] if isinstance(outputs, str) else list(outputs)
        unknown = [n for n in names if n not in self.blob_names]
        if unknown:
            raise KeyError(f"no blob named {unknown} in {self.source}")
        return names

    def forward(self, *args, outputs=None, **inputs):
        if args:
            if len(args) != 1 or inputs or len(self.input_shapes) != 1:
                raise TypeError(f"pass inputs by name: {list(self.input_shapes)}")
            inputs = {next(iter(self.input_shapes)): args[0]}
        missing = [n for n in self.input_shapes if n not in inputs]
        extra = [n for n in inputs if n not in self.input_shapes]
        if missing or extra:
            raise TypeError(f"inputs of this net are {list(self.input_shapes)}; "
                            f"missing {missing}, unknown {extra}")
        wanted = self._wanted(outputs)
        keep = set(wanted)
        blobs = dict(inputs)
        for i, step in enumerate(self.steps):
            try:
                tops = self.layers[step.key](*[blobs[b] for b in step.bottom])
            except (RuntimeError, ValueError) as exc:
                shapes = [tuple(blobs[b].shape) for b in step.bottom]
                raise LayerError(f"{self.source}: layer {named(step.name, step.type)} on bottom "
                                 f"shapes {shapes}: {exc}") from exc
            if isinstance(tops, torch.Tensor):
                tops = [tops]
            blobs.update(zip(step.top, tops))
            for b in step.bottom:                      # free what no later layer reads
                if self._last_read[b] == i and b not in keep:
                    blobs.pop(b, None)
        result = {name: blobs[name] for name in wanted}
        if args and outputs is None and len(result) == 1:
            return next(iter(result.values()))
        return result

    def extra_repr(self):
        return f"name={self.net_name!r}, inputs={self.input_shapes}, outputs={self.output_names}"
