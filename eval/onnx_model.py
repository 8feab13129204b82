"""An ONNX Runtime session that the evaluation drives like the torch model.

    python eval/run.py --onnx pspnet101_VOC2012.onnx --dataset voc --data-root DIR

`OnnxModel(path)` is called with an (N, 3, H, W) float32 tensor (BGR, mean
subtracted, what `protocol.window_probs` feeds) and returns the (N, C, H, W) raw
scores as a float32 tensor on the input's device; ``.meta`` is the model's meta,
read back from the file's ``metadata_props`` (written by converter/export.py
--onnx), so crop, base size, mean and dataset default exactly as for the .pth.
The session runs on ONNX Runtime's CPU provider; ``threads`` (0 = ONNX Runtime's
choice) sets its intra-op threads.

The file is a stranger's: before ONNX Runtime sees it (`check_graph`), every tensor it
declares (initializers, constants, graph inputs, outputs and the shapes ONNX's own shape
inference derives) is counted against ``limits.parameters`` elements
(`psp_torch.limits.Limits`), tensors stored outside the file (external data: a path inside
the file) are refused, and the meta is checked like a .pth's (`psp_torch.metadata.check_meta`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from caffe_proto.printable import printable
from psp_torch.limits import DEFAULT, Limits, refuse
from psp_torch.metadata import check_meta


def _declared_shapes(model):
    """(what, dims) of every tensor shape the graph states; symbolic dims count as 1."""
    g = model.graph
    for t in g.initializer:
        yield f"initializer {t.name}", list(t.dims)
    for node in g.node:
        for a in node.attribute:
            if a.HasField("t"):
                yield f"constant of node {node.name or node.op_type}", list(a.t.dims)
    for kind, infos in (("input", g.input), ("output", g.output), ("value", g.value_info)):
        for vi in infos:
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                yield (f"{kind} {vi.name}",
                       [d.dim_value if d.HasField("dim_value") else 1
                        for d in vi.type.tensor_type.shape.dim])


def _external(model):
    """Names of tensors whose data the file keeps elsewhere (a path inside the file)."""
    import onnx
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL or t.external_data:
            yield t.name
    for node in model.graph.node:
        for a in node.attribute:
            if a.HasField("t") and (a.t.data_location == onnx.TensorProto.EXTERNAL
                                    or a.t.external_data):
                yield f"constant of node {node.name or node.op_type}"


def check_graph(path, limits: Limits | None = None) -> None:
    """Refuse (ValueError naming the file, the tensor and its shape) an ONNX file that keeps
    data outside itself or declares a tensor above ``limits.parameters`` elements, before
    ONNX Runtime allocates anything for it."""
    import onnx
    limits = limits or DEFAULT
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:                    # protobuf's DecodeError and the like
        raise ValueError(f"{path}: not a loadable ONNX model: "
                         f"{printable((str(exc).strip().splitlines() or [''])[0], 160)}") \
            from None
    for name in _external(model):
        raise ValueError(f"{path}: tensor {printable(name, 80)} keeps its data in an external "
                         f"file (a path inside the model); only self-contained files are read")
    try:           # shapes ONNX derives from constant shape inputs (Reshape, Expand, ...)
        model = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:
        pass                                    # ONNX Runtime's own checks judge the rest
    for what, dims in _declared_shapes(model):
        if any(d < 0 for d in dims):
            raise ValueError(f"{path}: {printable(what, 80)} declares a negative size {dims}")
        n = math.prod(dims)
        if n > limits.parameters:
            raise refuse(path, f"{printable(what, 80)} of shape {dims}:", f"{n:,} elements",
                         "parameters", limits)


class OnnxModel:
    """A model-like wrapper of an ``onnxruntime.InferenceSession`` (see module doc)."""

    def __init__(self, path, threads: int = 0, limits: Limits | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError("--onnx needs onnxruntime (pip install onnxruntime)") from None
        self.path = Path(path)
        check_graph(self.path, limits)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:       # onnxruntime's own exception types
            raise ValueError(f"{self.path}: not a loadable ONNX model: "
                             f"{printable((str(exc).strip().splitlines() or [''])[0], 160)}"
                             ) from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{self.path}: expected one input and one output, got "
                             f"{len(inputs)} and {len(outputs)}")
        self.input_name = inputs[0].name
        from pspnet_caffe.converter.onnx_export import meta_from_props
        try:
            meta = meta_from_props(self.session.get_modelmeta().custom_metadata_map)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path}: unreadable meta in its metadata_props: "
                             f"{printable(str(exc), 160)}") from None
        except RecursionError:
            raise ValueError(f"{self.path}: unreadable meta in its metadata_props: JSON nested "
                             f"deeper than Python reads") from None
        self.meta = check_meta(meta, self.path, limits)
        self.training = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        data = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        try:
            outputs = self.session.run(None, {self.input_name: data})
        except Exception as exc:       # onnxruntime's own exception types
            raise ValueError(f"{self.path}: ONNX Runtime failed on a {list(data.shape)} input: "
                             f"{printable((str(exc).strip().splitlines() or [''])[0], 160)}"
                             ) from None
        scores = outputs[0]
        if not isinstance(scores, np.ndarray) or scores.ndim != 4 \
                or scores.shape[0] != data.shape[0] or scores.shape[2:] != data.shape[2:]:
            raise ValueError(f"{self.path}: its output has shape "
                             f"{list(getattr(scores, 'shape', []))}, not (N, classes, H, W) for "
                             f"a {list(data.shape)} input")
        return torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32)).to(x.device)

    def to(self, device):
        return self

    def eval(self):
        return self
