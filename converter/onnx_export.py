"""A PSPNet as an ONNX graph (torch's own exporter), batch and input size dynamic.

    python converter/export.py pspnet50_ADE20K.pth --onnx pspnet50_ADE20K.onnx

`psp_torch.PSPNet` computes its shape-dependent constants (pooled sizes, AVE
divisors, Interp source rows and weights) with numpy from the concrete input size,
which an exporter would freeze into the graph. `ExportablePSPNet` runs the same
modules with the same Caffe arithmetic written as tensor operations on the input's
symbolic size, so one graph serves every batch and input size:

* pool1_3x3_s2 (MAX 3/2/1, ceil): pad with -inf to exactly the windows Caffe's
  ceil rule asks for, then a plain MaxPool (Caffe's last-window clip never fires
  for stride <= kernel - pad, asserted).
* conv5_3_pool{1,2,3,6} (AVE, kernel = stride fixed at the training crop's
  feature_size // bin): pad with zeros to ``ceil((n - k) / k) + 1`` whole windows,
  reshape into windows, sum, divide by Caffe's divisor (the window's extent inside
  ``[0, n)``), i.e. the same divisor as Caffe's; only the summation order is ONNX
  Runtime's.
* Interp (corner-aligned bilinear): Caffe's float32 ratio ``(n_in - 1) / (n_out - 1)``,
  source coordinate ``ratio * i``, truncation, neighbour, lambdas, and the blend
  ``l0h * (l0w * a + l1w * b) + l1h * (l0w * c + l1w * d)`` as Gather/Mul/Add:
  the same float operations as `psp_torch.layers.interp`.

The exporter is ``torch.onnx.export(..., dynamo=True)`` (torch.export + onnxscript;
the legacy TorchScript exporter gives the same graph from this module, see
converter/README.md), opset `OPSET`; input ``data`` (N, 3, H, W) float32 BGR mean-subtracted, output
``scores`` (N, classes, H, W), raw scores (Caffe's conv6_interp), with ``N``, ``H``,
``W`` dynamic. The model's meta (name, dataset, classes, palette, crop, mean, ...)
and config are stored as ONNX ``metadata_props``, each value a JSON string.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from psp_torch.io import atomic_write

OPSET = 18
FORMAT = "psp_torch.onnx/1"
INPUT, OUTPUT = "data", "scores"


def _ceil_div(a, b):
    """ceil(a / b) for a >= 0, b > 0 (ONNX's integer Div truncates: no negative operands)."""
    return (a + b - 1) // b


def max_pool_caffe(x, kernel: int, stride: int, pad: int):
    """Caffe MAX pooling (ceil mode) on a symbolic size: -inf padding + plain MaxPool."""
    if stride > kernel - pad:
        raise ValueError(f"MAX pool {kernel}/{stride}/{pad}: Caffe's last-window clip could "
                         f"fire; not expressed here")
    h, w = x.shape[-2:]
    ho = _ceil_div(h + 2 * pad - kernel, stride) + 1
    wo = _ceil_div(w + 2 * pad - kernel, stride) + 1
    bottom = (ho - 1) * stride + kernel - pad - h
    right = (wo - 1) * stride + kernel - pad - w
    x = F.pad(x, (pad, right, pad, bottom), value=float("-inf"))
    y = F.max_pool2d(x, kernel, stride)
    return y.clamp(min=torch.finfo(y.dtype).min)        # Caffe starts from -FLT_MAX


def _ave_divisor(n, n_out, kernel: int):
    """Caffe's AVE divisor of each window along one axis (pad 0): its extent inside [0, n)."""
    start = torch.arange(n_out, dtype=torch.int64) * kernel
    end = torch.clamp(start + kernel, max=n)
    return (end - start).to(torch.float32)


def ave_pool_caffe(x, kernel: int):
    """Caffe AVE pooling with kernel = stride, pad 0 (the PPM), on a symbolic size."""
    n, c, h, w = x.shape
    ho, wo = _ceil_div(h, kernel), _ceil_div(w, kernel)     # = ceil((n - k) / k) + 1
    x = F.pad(x, (0, wo * kernel - w, 0, ho * kernel - h), value=0.0)
    total = x.reshape(n, c, ho, kernel, wo, kernel).sum(dim=(3, 5))
    div = _ave_divisor(h, ho, kernel)[:, None] * _ave_divisor(w, wo, kernel)[None, :]
    return total / div


def _axis(n_in, n_out):
    """Caffe Interp's source index, neighbour and float32 lambdas along one axis."""
    ratio = (torch.full((), 1.0, dtype=torch.float32) * (n_in - 1)
             / torch.clamp(torch.full((), 1.0, dtype=torch.float32) * (n_out - 1), min=1.0))
    src = ratio * torch.arange(n_out, dtype=torch.float32)
    i0 = src.to(torch.int64)                                   # truncation (src >= 0)
    i1 = i0 + (i0 < n_in - 1).to(torch.int64)
    l1 = src - i0.to(torch.float32)
    return i0, i1, 1.0 - l1, l1


def interp_caffe(x, h_out, w_out):
    """Caffe Interp (corner-aligned bilinear) to (h_out, w_out) on a symbolic size."""
    h, w = x.shape[-2:]
    h0, h1, lh0, lh1 = _axis(h, h_out)
    w0, w1, lw0, lw1 = _axis(w, w_out)
    cols = x.index_select(3, w0) * lw0 + x.index_select(3, w1) * lw1
    return (cols.index_select(2, h0) * lh0[:, None]
            + cols.index_select(2, h1) * lh1[:, None])


class ExportablePSPNet(nn.Module):
    """A PSPNet's eval forward with symbolic-size Caffe pooling and Interp (see module doc)."""

    def __init__(self, model):
        super().__init__()
        self.model = model.eval()

    def forward(self, data):
        m = self.model
        h, w = data.shape[-2:]
        s = m.stem
        y = s.relu(s.bn1(s.conv1(data)))
        y = s.relu(s.bn2(s.conv2(y)))
        y = s.relu(s.bn3(s.conv3(y)))
        y = max_pool_caffe(y, 3, 2, 1)
        y = m.layer4(m.layer3(m.layer2(m.layer1(y))))
        fh, fw = y.shape[-2:]
        pooled = [interp_caffe(st.relu(st.bn(st.conv(ave_pool_caffe(y, st.kernel)))), fh, fw)
                  for st in m.ppm.stages]
        y = torch.cat([y] + pooled[::-1], dim=1)
        return interp_caffe(m.classifier(m.head(y)), h, w)


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


def export_onnx(model, out, *, example_size: int | None = None, opset: int = OPSET) -> Path:
    """Write the ONNX graph of a PSPNet (eval mode) to `out`, atomically; returns the path."""
    import onnx  # optional (pip install .[onnx]): only this export needs it

    out = Path(out)
    side = example_size or model.config.crop_size
    net = ExportablePSPNet(model).eval()
    example = torch.zeros(2, 3, side, side)
    batch, height, width = (torch.export.Dim.DYNAMIC,) * 3
    # the exporter logs a warning per torchvision operator it cannot register: not ours
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)      # torch.export internals' notices
        program = torch.onnx.export(net, (example,), None, dynamo=True, opset_version=opset,
                                    input_names=[INPUT], output_names=[OUTPUT],
                                    dynamic_shapes={"data": {0: batch, 2: height, 3: width}},
                                    external_data=False, verbose=False)
    proto = program.model_proto
    for key, value in metadata(model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"PSPNet ({(model.meta or {}).get('name')}) exported by psp_torch"
    onnx.checker.check_model(proto)
    return atomic_write(out, lambda tmp: onnx.save_model(proto, tmp))
