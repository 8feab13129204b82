"""A PSPNet as an ONNX graph (torch's own exporter), batch and input size dynamic.

    python converter/export.py pspnet50_ADE20K.pth --onnx pspnet50_ADE20K.onnx

The graph is the model's own ``forward``, traced once by ``torch.export``
(`psp_torch.tracing.export_program`: N, H, W dynamic): the Caffe shape arithmetic
(ceil pooling and its last-window rule, AVE divisors, Interp's float32 ratio, source
rows and lambdas) is computed by the layers from the input's symbolic size
(`psp_torch.layers.pooling`, `psp_torch.layers.interp`), so one graph serves every
batch and input size and every `PSPNetConfig` (bins, MAX or AVE pyramid, with or
without reduction, depth, stride position; an aux head is training-only and not in
the graph). There is no second copy of the network here.

One operator needs a translation of its own (`_avg_pool2d`): torch's ONNX library
ignores ``avg_pool2d``'s ``divisor_override`` (the layers sum each AVE window that
way and divide by Caffe's divisor); here it is AveragePool times the window area
over the override, i.e. the window sum up to float32 rounding.

The exporter is ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript),
opset `OPSET`; input ``data`` (N, 3, H, W) float32 BGR mean-subtracted, output
``scores`` (N, classes, H, W), raw scores (Caffe's conv6_interp). The model's meta
(name, dataset, classes, palette, crop, mean, ...) and config are stored as ONNX
``metadata_props``, each value a JSON string.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch

from psp_torch import compat
from psp_torch.io import atomic_write
from psp_torch.tracing import example_input, export_program

OPSET = 18
FORMAT = "psp_torch.onnx/1"
INPUT, OUTPUT = "data", "scores"


def _pair(v):
    return (v[0], v[-1]) if isinstance(v, (list, tuple)) and v else (v, v)


def _avg_pool2d(self, kernel_size, stride=(), padding=(0, 0), ceil_mode=False,
                count_include_pad=True, divisor_override=None):
    """aten.avg_pool2d as ONNX AveragePool, ``divisor_override`` honoured (pad 0 only)."""
    from onnxscript import opset18 as op

    (kh, kw), (sh, sw) = _pair(kernel_size), _pair(stride or kernel_size)
    (ph, pw) = _pair(padding)
    if divisor_override is not None and (ph or pw or ceil_mode):
        raise ValueError("avg_pool2d with divisor_override needs padding 0, floor mode")
    y = op.AveragePool(self, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw],
                       ceil_mode=int(bool(ceil_mode)),
                       count_include_pad=int(bool(count_include_pad)))
    if divisor_override is None:
        return y
    area = op.CastLike(op.Constant(value_float=kh * kw / divisor_override), y)
    return op.Mul(y, area)


# aten operators whose torch ONNX translation is replaced
TRANSLATIONS = {torch.ops.aten.avg_pool2d.default: _avg_pool2d}


def metadata(model) -> dict[str, str]:
    """ONNX metadata_props of a PSPNet: every meta entry and the config as JSON strings."""
    props = {"format": FORMAT,
             "input": f"{INPUT}: (N, 3, H, W) float32, BGR, mean_rgb subtracted",
             "output": f"{OUTPUT}: (N, num_classes, H, W) raw class scores (Caffe conv6_interp)",
             "config": json.dumps(model.config.to_dict())}
    for key, value in (model.meta or {}).items():
        props[f"meta.{key}"] = json.dumps(value)
    return props


def meta_from_props(props) -> dict:
    """The meta dict back from metadata_props as a {key: value} mapping (ONNX Runtime's
    ``get_modelmeta().custom_metadata_map``, or ``{p.key: p.value for p in
    model.metadata_props}``)."""
    return {k[len("meta."):]: json.loads(v) for k, v in props.items() if k.startswith("meta.")}


def onnx_graph(module, example: torch.Tensor, *, opset: int = OPSET):
    """The checked ONNX ModelProto of ``module.forward(example)`` (eval mode), traced by
    `export_program` (N, H, W dynamic): input `INPUT`, output `OUTPUT`. Raises
    `compat.TorchTooOld` (one line) on a torch without the exporter."""
    compat.require(compat.ONNX)
    import onnx  # optional (pip install .[onnx]): only this export needs it

    # the exporter logs a warning per torchvision operator it cannot register: not ours
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)      # torch.export internals' notices
        program = export_program(module, example)
        onnx_program = torch.onnx.export(
            program, (example,), None, dynamo=True, opset_version=opset,
            input_names=[INPUT], output_names=[OUTPUT], external_data=False, verbose=False,
            custom_translation_table=TRANSLATIONS)
    proto = onnx_program.model_proto
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model, out, *, example_size: int | None = None, opset: int = OPSET) -> Path:
    """Write the ONNX graph of a PSPNet (its eval forward; the model's mode is kept) with
    its `metadata` to `out`, atomically; returns the path. A configuration the exporter
    cannot express, or a torch without the exporter, is one ValueError naming `out`, and
    nothing is written."""
    out = Path(out)
    problem = compat.too_old(compat.ONNX)
    if problem:
        raise ValueError(f"{out}: not written: {problem}")
    import onnx  # optional (pip install .[onnx]): only this export needs it

    try:
        proto = onnx_graph(model, example_input(model, example_size), opset=opset)
    except Exception as exc:        # the exporter's own errors are pages of trace
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ValueError(f"{out}: not written: torch.onnx.export failed on this PSPNet "
                         f"({type(exc).__name__}: {first})") from exc
    for key, value in metadata(model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"PSPNet ({(model.meta or {}).get('name')}) exported by psp_torch"
    return atomic_write(out, lambda tmp: onnx.save_model(proto, tmp))
