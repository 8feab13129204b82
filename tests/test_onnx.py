"""converter/export.py --onnx: the ONNX graph (the traced PSPNet.forward) run by ONNX Runtime
(CPU) against the faithful PyTorch forward, layer by layer, for whole nets at two input sizes
and for every PSPNetConfig variant (tests/variants.py) against the float64 forward;
eval/run.py --onnx."""
from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import needs
import oracle
import psp_torch
import variants
from pspnet_caffe.converter.convert import convert
from pspnet_caffe.converter.export import export_onnx_file, main as export_main
from pspnet_caffe.converter.onnx_export import OPSET, export_onnx, meta_from_props, onnx_graph
from psp_torch.layers.interp import interp
from psp_torch.layers.pooling import pool2d

NETS = {c.dir.name: c for c in oracle.cases("nets")}
RTOL = 1e-4            # max |ORT - PyTorch| / max |output|, the bound
AGREE = 0.999          # argmax agreement


def _quiet(*_):
    pass


def _session(path):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(sess, x: torch.Tensor) -> np.ndarray:
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


# ---------------------------------------------------------------- the Caffe layers as ONNX

class _Layers(torch.nn.Module):
    """psp_torch's Caffe MAX 3/2/1 ceil, AVE k=s=5, Interp back to the input size."""

    def forward(self, x):
        return (pool2d(x, "max", 3, 2, 1), pool2d(x, "ave", 5, 5, 0),
                interp(x[:, :, ::3], x.shape[-2:]))


@pytest.fixture(scope="module")
def layers_session(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "layers.onnx"
    onnx.save_model(onnx_graph(_Layers(), torch.zeros(2, 3, 12, 14)), str(path))
    return _session(path)


@pytest.mark.parametrize("shape", [(2, 3, 12, 14), (1, 3, 7, 9), (1, 3, 4, 23), (3, 3, 26, 5),
                                   (1, 3, 2, 2)])
@needs.ONNX
def test_caffe_pooling_and_interp_in_onnx_are_psp_torch_layers(layers_session, shape):
    """The layers traced from one size (12x14): MAX pooling and Interp bit for bit; AVE
    pooling up to its summation order (ceil windows, divisor of the clipped window, a
    window larger than the input included)."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 10
    mx, ave, up = layers_session.run(None, {layers_session.get_inputs()[0].name: x.numpy()})
    h, w = shape[-2:]
    assert np.array_equal(mx, pool2d(x, "max", 3, 2, 1).numpy())
    ref = pool2d(x, "ave", 5, 5, 0).numpy()
    assert ave.shape == ref.shape and np.abs(ave - ref).max() <= 1e-6 * np.abs(ref).max()
    assert np.array_equal(up, interp(x[:, :, ::3], (h, w)).numpy())


# ---------------------------------------------------------------- whole nets

@pytest.fixture(scope="module")
def slim(tmp_path_factory):
    """name -> (PSPNet, ONNX path) of the slim oracle nets, exported on first use."""
    d = tmp_path_factory.mktemp("slim_onnx")
    made = {}

    def get(name):
        if name not in made:
            pth = convert(NETS[name].caffemodel, out=d / f"{name}.pth", log=_quiet)
            made[name] = (psp_torch.load(pth), export_onnx_file(pth, d / f"{name}.onnx",
                                                                log=_quiet), pth)
        return made[name]
    return get


def _compare(model, sess, x):
    """(ORT vs PyTorch, PyTorch fp32 vs fp64, ORT vs fp64) relative to max |output|, and the
    argmax agreement of ORT with PyTorch."""
    with torch.no_grad():
        t32 = model(x).numpy()
        t64 = copy.deepcopy(model).double()(x.double()).numpy()
    o = _run(sess, x)
    assert o.shape == t32.shape and o.dtype == np.float32
    scale = np.abs(t64).max()
    return (np.abs(o - t32).max() / scale, np.abs(t32 - t64).max() / scale,
            np.abs(o - t64).max() / scale, float((o.argmax(1) == t32.argmax(1)).mean()))


def _oracle_input(name):
    return torch.from_numpy(NETS[name].blobs()["data"])


@needs.ONNX
@pytest.mark.parametrize("name", sorted(NETS))
def test_slim_oracle_net_onnx_matches_pytorch_at_two_sizes(slim, name):
    """The Caffe oracle's input at the crop size, and a crop of it of another size (not
    8k+1, not square). PSPNet50: within RTOL of the PyTorch forward. PSPNet101 (slim,
    calibrated random weights): the float32 PyTorch forward is itself ~3e-4 from the exact
    (float64) result, so no float32 engine can stay within 1e-4 of it; there ONNX Runtime
    must be about as close to the exact result as PyTorch is (x 1.5; measured <= 1.21)."""
    model, path, _ = slim(name)
    sess = _session(path)
    x = _oracle_input(name)
    side = x.shape[-1]
    for inp in (x, x[..., : side * 2 // 3, : side - 40].contiguous()):
        dev, floor, err, agree = _compare(model, sess, inp)
        print(f"{name} {tuple(inp.shape)}: |ORT-PyTorch| {dev:.3g}, |PyTorch-fp64| {floor:.3g}, "
              f"|ORT-fp64| {err:.3g}, argmax agreement {agree:.6f}")
        assert agree >= AGREE
        if model.config.depth == 50:
            assert dev <= RTOL
        else:
            assert err <= 1.5 * floor and dev <= 1e-3


@needs.ONNX
def test_onnx_metadata_and_dynamic_axes(slim):
    model, path, _ = slim("pspnet50_ade20k_slim")
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == OPSET or any(
        o.version == OPSET for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["format"] == "psp_torch.onnx/1"
    for key in ("name", "dataset", "num_classes", "class_names", "palette", "crop_size",
                "base_size", "mean_rgb", "channel_order"):
        assert json.loads(props[f"meta.{key}"]) == model.meta[key], key
    assert meta_from_props(props) == model.meta
    assert json.loads(props["config"]) == model.config.to_dict()
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
    # batch: two images at once give the two single results
    sess = _session(path)
    x = torch.randn(2, 3, 97, 130, generator=torch.Generator().manual_seed(3)) * 50
    both = _run(sess, x)
    for i in range(2):
        one = _run(sess, x[i:i + 1].contiguous())
        assert np.abs(both[i:i + 1] - one).max() <= 1e-5 * np.abs(one).max()


@needs.ONNX
def test_export_cli_onnx_keeps_existing_and_refuses_caffenet(slim, tmp_path, capsys):
    _, _, pth = slim("pspnet50_ade20k_slim")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    assert export_main([str(pth), "--onnx", str(out)]) == 1          # psp_torch.cli: one line
    err = capsys.readouterr().err.strip().splitlines()
    assert out.read_bytes() == b"keep" and err == [f"error: {out}: exists; pass --force to "
                                                   f"overwrite it"]
    assert not list(tmp_path.glob("*.caffemodel"))    # --onnx alone writes no Caffe files
    case = oracle.cases("layers")[0]                         # a generic net: no ONNX export
    generic = convert(case.caffemodel, case.prototxt, out=tmp_path / "g.pth", log=_quiet)
    assert export_main([str(generic), "--onnx", str(tmp_path / "g.onnx")]) == 1
    assert "generic CaffeNet" in capsys.readouterr().err and not (tmp_path / "g.onnx").exists()


FULL = {"pspnet50_ade20k": pytest.param("pspnet50_ade20k"),
        "pspnet101_voc2012": pytest.param("pspnet101_voc2012", marks=pytest.mark.slow),
        "pspnet101_cityscapes": pytest.param("pspnet101_cityscapes", marks=pytest.mark.slow)}


@needs.ONNX
@pytest.mark.parametrize("name", list(FULL.values()))
def test_released_configuration_full_size_onnx_matches_pytorch(name, tmp_path):
    """Random init, full size, at the crop size (473 / 713) and at a second size."""
    torch.manual_seed(0)
    model = getattr(psp_torch, name)().eval()
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    sess = _session(path)
    crop = model.config.crop_size
    g = torch.Generator().manual_seed(1)
    for shape in ((1, 3, crop, crop), (1, 3, 353, 393)):
        x = torch.randn(*shape, generator=g) * 50
        with torch.no_grad():
            ref = model(x).numpy()
        o = _run(sess, x)
        dev = np.abs(o - ref).max() / np.abs(ref).max()
        agree = float((o.argmax(1) == ref.argmax(1)).mean())
        print(f"{name} {shape}: |ORT-PyTorch| {dev:.3g}, argmax agreement {agree:.6f}")
        assert dev <= RTOL and agree >= AGREE


# ---------------------------------------------------------------- every config variant

FLOOR_RATIO = 1.5      # ORT's distance to the exact result / PyTorch fp32's (measured <= 1.2)
VARIANT_BOUND = 1e-5   # and an absolute bound: a wrong graph is off by ~1e-2 (issue 16)


@needs.ONNX
@pytest.mark.parametrize("name", list(variants.VARIANTS))
def test_every_config_variant_exports_and_matches_the_float64_forward(name, tmp_path):
    """The traced forward of every PSPNetConfig the training CLI can build (MAX pyramid, no
    reduction, bins (1,), none, aux head, depth 101 with the 3x3 stride), one graph, run by
    ONNX Runtime at both sizes of tests/variants.py (batch 2 and 1) against the float64
    forward with the same weights. Bound: float32 rounding, i.e. no farther from the exact
    result than FLOOR_RATIO x the float32 PyTorch forward (measured <= 1.2), and <=
    VARIANT_BOUND of the output scale."""
    model = variants.calibrated_model(name)
    path = export_onnx(model, tmp_path / f"{name}.onnx")
    sess = _session(path)
    exact = copy.deepcopy(model).double()
    g = torch.Generator().manual_seed(2)
    for batch, (h, w) in zip((2, 1), variants.SIZES):
        x = torch.randn(batch, 3, h, w, generator=g) * 50
        with torch.no_grad():
            t32 = model(x).numpy()
            t64 = exact(x.double()).numpy()
        o = _run(sess, x)
        assert o.shape == t32.shape == (batch, model.config.num_classes, h, w)
        scale = np.abs(t64).max()
        err, floor = np.abs(o - t64).max() / scale, np.abs(t32 - t64).max() / scale
        agree = float((o.argmax(1) == t64.argmax(1)).mean())
        print(f"{name} {tuple(x.shape)}: |ORT-fp64| {err:.3g}, |PyTorch-fp64| {floor:.3g}, "
              f"|ORT-PyTorch| {np.abs(o - t32).max() / scale:.3g}, argmax agreement "
              f"{agree:.6f}")
        assert err <= FLOOR_RATIO * floor and err <= VARIANT_BOUND and agree >= AGREE


@needs.ONNX
def test_export_cli_onnx_failure_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    """Whatever the exporter raises (pages of trace), the CLI says one line naming the output
    file, exits 1 and leaves no file behind."""
    from psp_torch.io import save_pspnet
    from pspnet_caffe.converter import onnx_export

    pth = save_pspnet(variants.calibrated_model("max_pool"), tmp_path / "m.pth")

    def fails(*_):
        raise RuntimeError("the exporter's first line\n  and its pages of trace")
    monkeypatch.setattr(onnx_export, "export_program", fails)
    out = tmp_path / "m.onnx"
    assert export_main([str(pth), "--onnx", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out}: not written: ")
    assert "the exporter's first line" in err[0] and not list(tmp_path.glob("*.onnx*"))


# ---------------------------------------------------------------- eval/run.py --onnx

def _numbers(tree, path=""):
    """Every number of a results.json with its path; strings and the rest as they are."""
    if isinstance(tree, dict):
        return {k: v for key in tree for k, v in _numbers(tree[key], f"{path}/{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, x in enumerate(tree) for k, v in _numbers(x, f"{path}/{i}").items()}
    return {path: tree}


@needs.ONNX
def test_eval_run_onnx_gives_the_torch_results(slim, tmp_path, capsys):
    """The authors' protocol (sliding windows over the 500-pixel sample images, mirror)
    driving ONNX Runtime: the same results.json up to 1e-3 (probabilities, IoUs and
    accuracies absolute; pixel counts relative: a pixel whose argmax flips moves them)."""
    from pspnet_caffe.eval import run as eval_run
    _, onnx_path, pth = slim("pspnet101_voc_slim")
    samples = oracle.ORACLE.parent / "samples"
    common = ["--dataset", "voc", "--split", "val", "--data-root", str(samples), "--workers", "0",
              "--batch", "2", "--save-probs"]
    assert eval_run.main(["--weights", str(pth), "--out", str(tmp_path / "torch")] + common) == 0
    assert eval_run.main(["--onnx", str(onnx_path), "--out", str(tmp_path / "onnx")] + common) == 0
    capsys.readouterr()
    a = _numbers(json.loads((tmp_path / "torch" / "results.json").read_text()))
    b = _numbers(json.loads((tmp_path / "onnx" / "results.json").read_text()))
    assert a.keys() == b.keys()
    worst, counts = 0.0, 0.0
    for key, x in a.items():
        if key.endswith("sha256"):                                 # the model files differ
            continue
        if isinstance(x, float) and isinstance(b[key], float):     # IoU, accuracies
            worst = max(worst, abs(x - b[key]))
        elif isinstance(x, int) and not isinstance(x, bool):        # pixel counts
            counts = max(counts, abs(x - b[key]) / max(abs(x), 1))
        else:
            assert x == b[key], key
    probs = sorted((tmp_path / "torch" / "probs").glob("*.npy"))
    assert len(probs) == 2
    dev, agree = 0.0, 1.0
    for p in probs:
        pa, pb = np.load(p), np.load(tmp_path / "onnx" / "probs" / p.name)
        dev = max(dev, float(np.abs(pa - pb).max()))
        agree = min(agree, float((pa.argmax(0) == pb.argmax(0)).mean()))
    print(f"eval --onnx vs --weights: max |prob diff| {dev:.3g}, argmax agreement {agree:.6f}, "
          f"results.json: largest difference {worst:.3g} (fractions), {counts:.3g} (relative, "
          f"pixel counts)")
    assert dev <= 1e-3 and agree >= AGREE and worst <= 1e-3 and counts <= 1e-3
    with pytest.raises(SystemExit) as e:                             # a usage error
        eval_run.main(["--onnx", str(onnx_path), "--precision", "bf16", "--out",
                       str(tmp_path / "x")] + common)
    assert e.value.code == 2 and "--precision bf16 does not apply" in capsys.readouterr().err


def test_eval_run_onnx_bad_file_is_one_line_naming_it(tmp_path, capsys):
    from pspnet_caffe.eval import run as eval_run
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07not an onnx model")
    samples = oracle.ORACLE.parent / "samples"
    rc = eval_run.main(["--onnx", str(bad), "--dataset", "voc", "--split", "val", "--data-root",
                        str(samples), "--out", str(tmp_path / "o"), "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith(f"error: {bad}: ")
    assert "not a loadable ONNX model" in err[0] and not (tmp_path / "o").exists()
