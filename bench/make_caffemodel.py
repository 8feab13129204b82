"""Full-size caffemodels with random weights, from a released deploy prototxt.

    python bench/make_caffemodel.py pspnet101_voc2012 OUT.caffemodel [--released-types]

Blob shapes come from a small channel inference over the prototxt (a
Convolution's weights are (num_output, in_channels / group, kh, kw) plus a
bias (num_output) when bias_term; a BN layer holds four 1xCx1x1 blobs;
Concat adds channels; every other layer keeps its bottom's). The file is
written by `caffe_proto.save_caffemodel`, i.e. in the layout Caffe itself
writes. With --released-types the layer types are those of the released
files (ConvolutionData, HoleConvolutionData for dilated convolutions, BNData).

Reusable: ``make_full_size_caffemodel(preset_name, path)``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from caffe_proto import Layer, Net, load_prototxt, save_caffemodel  # noqa: E402

PROTOTXTS = {
    "pspnet50_ade20k": "pspnet50_ADE20K_473.prototxt",
    "pspnet101_voc2012": "pspnet101_VOC2012_473.prototxt",
    "pspnet101_cityscapes": "pspnet101_cityscapes_713.prototxt",
}
PROTOTXT_DIR = ROOT / "tests" / "data" / "prototxt"


def _pair(values, h, w, default):
    if h:
        return h, w
    values = list(values)
    if not values:
        return default, default
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def blob_shapes(net: Net) -> dict[str, list[tuple[int, ...]]]:
    """Learnable blob shapes per layer name, from a channel inference over the net."""
    channels = {name: shape[1] for name, shape in net.inputs.items() if len(shape) > 1}
    shapes = {}
    for layer in net.layers:
        bottom = [channels[b] for b in layer.bottom]
        if layer.type in ("Convolution", "ConvolutionData", "HoleConvolutionData"):
            p = layer.param.convolution_param
            kh, kw = _pair(p.kernel_size, p.kernel_h, p.kernel_w, 1)
            shapes[layer.name] = [(p.num_output, bottom[0] // p.group, kh, kw)]
            if p.bias_term:
                shapes[layer.name].append((p.num_output,))
            out = p.num_output
        elif layer.type in ("BN", "BNData"):
            shapes[layer.name] = [(1, bottom[0], 1, 1)] * 4
            out = bottom[0]
        elif layer.type == "Concat":
            out = sum(bottom)
        else:
            out = bottom[0] if bottom else 0
        for top in layer.top:
            channels[top] = out
    return shapes


def released_type(layer: Layer) -> str:
    if layer.type == "BN":
        return "BNData"
    if layer.type == "Convolution":
        dilated = any(d > 1 for d in layer.param.convolution_param.dilation)
        return "HoleConvolutionData" if dilated else "ConvolutionData"
    return layer.type


def make_full_size_caffemodel(preset_name: str, path, *, seed: int = 0,
                              released_types: bool = False) -> Path:
    """Write the preset's deploy net with random float32 weights as a caffemodel."""
    net = load_prototxt(PROTOTXT_DIR / PROTOTXTS[preset_name])
    rng = np.random.default_rng(seed)
    shapes = blob_shapes(net)
    for layer in net.layers:
        layer.blobs = [rng.standard_normal(s, dtype=np.float32) for s in shapes.get(layer.name, [])]
        if released_types:
            layer.type = layer.param.type = released_type(layer)
    save_caffemodel(net, path)
    return Path(path)


def main(argv=None) -> int:
    from caffe_proto import cli
    ap = cli.parser(None, __doc__)
    ap.add_argument("preset", choices=sorted(PROTOTXTS))
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--released-types", action="store_true")
    args = ap.parse_args(argv)
    path = make_full_size_caffemodel(args.preset, args.out, seed=args.seed,
                                     released_types=args.released_types)
    print(f"{path}: {path.stat().st_size / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
