"""An ONNX Runtime session that the evaluation drives like the torch model.

    python eval/run.py --onnx pspnet101_VOC2012.onnx --dataset voc --data-root DIR

`OnnxModel(path)` is called with an (N, 3, H, W) float32 tensor (BGR, mean
subtracted, what `protocol.window_probs` feeds) and returns the (N, C, H, W) raw
scores as a float32 tensor on the input's device; ``.meta`` is the model's meta,
read back from the file's ``metadata_props`` (written by converter/export.py
--onnx), so crop, base size, mean and dataset default exactly as for the .pth.
The session runs on ONNX Runtime's CPU provider; ``threads`` (0 = ONNX Runtime's
choice) sets its intra-op threads.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class OnnxModel:
    """A model-like wrapper of an ``onnxruntime.InferenceSession`` (see module doc)."""

    def __init__(self, path, threads: int = 0):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError("--onnx needs onnxruntime (pip install onnxruntime)") from None
        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:       # onnxruntime's own exception types
            raise ValueError(f"{self.path}: not a loadable ONNX model: "
                             f"{str(exc).strip().splitlines()[0]}") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(f"{self.path}: expected one input and one output, got "
                             f"{len(inputs)} and {len(outputs)}")
        self.input_name = inputs[0].name
        from pspnet_caffe.converter.onnx_export import meta_from_props
        try:
            self.meta = meta_from_props(self.session.get_modelmeta().custom_metadata_map)
        except ValueError as exc:              # json.JSONDecodeError
            raise ValueError(f"{self.path}: unreadable meta in its metadata_props: {exc}") from None
        self.training = False

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        data = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        (scores,) = self.session.run(None, {self.input_name: data})
        return torch.from_numpy(scores).to(x.device)

    def to(self, device):
        return self

    def eval(self):
        return self
