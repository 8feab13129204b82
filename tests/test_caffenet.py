"""CaffeNet as a graph: routing by name, weights by layer name, shapes, errors.

Layers without an oracle case (upstream BatchNorm with use_global_stats off,
Bias, Crop, Slice, Flatten, Reshape, PReLU, Sigmoid, TanH, Power) are checked
against their Caffe formulas written out here with plain torch ops; those are
exact in exact arithmetic, so the bound is float32 rounding of a few
operations: 1e-6 relative.
"""
import copy

import numpy as np
import pytest
import torch

import oracle
from caffe_proto import Layer, Net, load_prototxt
from psp_torch import CaffeNet
from psp_torch.layers import BN, Convolution, LayerError

FORMULA_BOUND = 1e-6   # a handful of float32 operations per element

MINI_UPSTREAM = """
name: "mini"
layer { name: "input" type: "Input" top: "data" top: "aux"
        input_param { shape { dim: 2 dim: 3 dim: 8 dim: 10 }
                      shape { dim: 2 dim: 3 dim: 4 dim: 6 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "prelu" type: "PReLU" bottom: "conv" top: "conv" }
layer { name: "crop" type: "Crop" bottom: "conv" bottom: "aux" top: "crop"
        crop_param { axis: 2 offset: 1 offset: 2 } }
layer { name: "slice" type: "Slice" bottom: "crop" top: "s1" top: "s2"
        slice_param { axis: 1 slice_point: 1 } }
layer { name: "sig" type: "Sigmoid" bottom: "s1" top: "s1" }
layer { name: "tanh" type: "TanH" bottom: "s2" top: "t2" }
layer { name: "prod" type: "Eltwise" bottom: "t2" bottom: "aux" top: "prod"
        eltwise_param { operation: PROD } }
layer { name: "power" type: "Power" bottom: "prod" top: "pow"
        power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "bias" type: "Bias" bottom: "pow" top: "pow" }
layer { name: "cat" type: "Concat" bottom: "s1" bottom: "pow" top: "cat" }
layer { name: "deconv" type: "Deconvolution" bottom: "cat" top: "up"
        convolution_param { num_output: 2 kernel_size: 2 stride: 2 } }
layer { name: "flat" type: "Flatten" bottom: "cat" top: "flat" }
layer { name: "ip" type: "InnerProduct" bottom: "flat" top: "ip"
        inner_product_param { num_output: 5 } }
layer { name: "train_only" type: "Dropout" bottom: "ip" top: "ip" include { phase: TRAIN } }
layer { name: "reshape" type: "Reshape" bottom: "ip" top: "r"
        reshape_param { shape { dim: 0 dim: -1 dim: 1 } } }
layer { name: "prob" type: "Softmax" bottom: "r" top: "prob" }
"""

MINI_FORK = """
name: "mini_psp"
input: "data"
input_shape { dim: 1 dim: 3 dim: 33 dim: 33 }
layer { name: "conv1/a" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 bias_term: false } }
layer { name: "conv1/bn" type: "BN" bottom: "conv1" top: "conv1" bn_param { eps: 1e-3 } }
layer { name: "conv1/relu" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool" type: "Pooling" bottom: "conv1" top: "pool"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "fixed" type: "Interp" bottom: "pool" top: "fixed"
        interp_param { height: 5 width: 7 } }
layer { name: "zoom" type: "Interp" bottom: "pool" top: "zoom" interp_param { zoom_factor: 4 } }
"""


def random_weights(net: Net, seed=0) -> Net:
    """A weights Net with every blob of the built CaffeNet drawn at random."""
    cnet = CaffeNet(net)
    rng = np.random.RandomState(seed)
    layers = []
    for step in cnet.steps:
        shapes = cnet.layers[step.key].blob_shapes()
        blobs = [rng.uniform(0.5, 1.5, s).astype(np.float32) for s in shapes]
        layers.append(Layer(step.name, step.type, list(step.bottom), list(step.top), None, blobs))
    return Net(net.name, net.dialect, dict(net.inputs), layers, "<random weights>")


def blobs_of(weights: Net, name: str):
    return [torch.from_numpy(b) for b in next(l for l in weights.layers if l.name == name).blobs]


def rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def test_upstream_net_matches_caffe_formulas():
    net = load_prototxt(MINI_UPSTREAM)
    weights = random_weights(net)
    cnet = CaffeNet(net, weights)
    assert list(cnet.input_shapes) == ["data", "aux"]
    assert cnet.output_names == ["up", "prob"]
    assert "train_only" not in cnet.module_keys               # TRAIN-only layer filtered
    g = torch.Generator().manual_seed(1)
    data, aux = torch.randn(2, 3, 8, 10, generator=g), torch.randn(2, 3, 4, 6, generator=g)
    out = cnet(data=data, aux=aux, outputs="all")
    assert set(cnet(data=data, aux=aux)) == {"up", "prob"}

    w = {name: blobs_of(weights, name) for name in cnet.module_keys}
    x = torch.nn.functional.conv2d(data, w["conv"][0], w["conv"][1], padding=1)
    f = 1 / w["bn"][2][0]
    mean, var = (w["bn"][0] * f).view(1, -1, 1, 1), (w["bn"][1] * f).view(1, -1, 1, 1)
    x = (x - mean) / torch.sqrt(var + 1e-5)
    x = x * w["scale"][0].view(1, -1, 1, 1) + w["scale"][1].view(1, -1, 1, 1)
    x = torch.clamp(x, min=0) + w["prelu"][0].view(1, -1, 1, 1) * torch.clamp(x, max=0)
    crop = x[:, :, 1:5, 2:8]
    s1, s2 = torch.sigmoid(crop[:, :1]), crop[:, 1:]
    pw = (1 + 0.5 * (torch.tanh(s2) * aux)) ** 2 + w["bias"][0].view(1, -1, 1, 1)
    cat = torch.cat([s1, pw], 1)
    up = torch.nn.functional.conv_transpose2d(cat, w["deconv"][0], w["deconv"][1], stride=2)
    ip = cat.flatten(1) @ w["ip"][0].T + w["ip"][1]
    prob = torch.softmax(ip.view(2, 5, 1), dim=1)
    expected = {"conv": x, "crop": crop, "s1": s1, "s2": s2, "pow": pw, "cat": cat, "up": up,
                "ip": ip, "prob": prob}
    for name, value in expected.items():
        assert out[name].shape == value.shape, name
        assert rel(out[name], value) <= FORMULA_BOUND, name
    shapes = cnet.infer_shapes()
    assert all(tuple(out[n].shape) == shapes[n] for n in out)


def test_batchnorm_scale_factor_zero_and_batch_statistics():
    net = load_prototxt("""
input: "x"
input_shape { dim: 3 dim: 2 dim: 4 dim: 5 }
layer { name: "g" type: "BatchNorm" bottom: "x" top: "g" }
layer { name: "b" type: "BatchNorm" bottom: "x" top: "b"
        batch_norm_param { use_global_stats: false eps: 1e-3 } }
""")
    cnet = CaffeNet(net)
    cnet.layers["g"].load_blobs([np.ones(2, np.float32), np.ones(2, np.float32),
                                 np.zeros(1, np.float32)])
    x = torch.randn(3, 2, 4, 5)
    out = cnet(x=x)
    # s == 0: Caffe uses mean = var = 0, so y = x / sqrt(eps)
    assert rel(out["g"], x / np.sqrt(np.float32(1e-5))) <= FORMULA_BOUND
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    assert rel(out["b"], (x - mean) / torch.sqrt(var + 1e-3)) <= 1e-5   # reductions reorder sums


def test_in_place_positional_and_named_outputs():
    net = load_prototxt(MINI_FORK)
    cnet = CaffeNet(net, random_weights(net))
    x = torch.randn(1, 3, 33, 33)
    out = cnet(data=x, outputs="all")
    assert list(out) == ["data", "conv1", "pool", "fixed", "zoom"]
    assert cnet.output_names == ["fixed", "zoom"]
    # in-place chain: "conv1" is the value after conv -> BN -> ReLU, as Caffe keeps it
    assert float(out["conv1"].detach().min()) >= 0
    assert set(cnet(x)) == {"fixed", "zoom"}                      # two outputs: a dict
    only = cnet(data=x, outputs=["pool"])
    assert list(only) == ["pool"] and torch.equal(only["pool"], out["pool"])
    with pytest.raises(KeyError, match="nope"):
        cnet(data=x, outputs=["nope"])
    with pytest.raises(TypeError, match="missing"):
        cnet(image=x)
    single = load_prototxt(MINI_FORK.replace(
        'layer { name: "zoom" type: "Interp" bottom: "pool" top: "zoom" '
        'interp_param { zoom_factor: 4 } }', ""))
    assert isinstance(CaffeNet(single)(x), torch.Tensor)           # one output: the tensor


def test_batch_and_other_sizes_reinfer_shapes_fixed_interp_stays_fixed():
    net = load_prototxt(MINI_FORK)
    cnet = CaffeNet(net, random_weights(net)).eval()
    assert cnet.blob_shapes["zoom"] == (1, 4, 33, 33)
    x = torch.randn(3, 3, 47, 30)
    out = cnet(x)
    shapes = cnet.infer_shapes(data=(3, 3, 47, 30))
    assert tuple(out["fixed"].shape) == shapes["fixed"] == (3, 4, 5, 7)   # fixed size stays
    # conv s2: 47x30 -> 24x15; pool k3 s2 p1: 13x8; zoom 4: 13 + 12*3 = 49, 8 + 7*3 = 29
    assert tuple(out["zoom"].shape) == shapes["zoom"] == (3, 4, 49, 29)
    for i in range(3):                                                    # rows independent
        one = cnet(x[i:i + 1])
        for k in one:
            assert rel(out[k][i:i + 1], one[k]) <= FORMULA_BOUND, k


def test_unsupported_type_names_layer_type_and_supported_types():
    text = MINI_FORK + 'layer { name: "norm" type: "LRN" bottom: "pool" top: "norm" }\n'
    with pytest.raises(LayerError) as err:
        CaffeNet(load_prototxt(text))
    msg = str(err.value)
    assert "'norm'" in msg and "'LRN'" in msg and "Convolution" in msg and "Interp" in msg


def test_build_errors_name_the_layer():
    bad_bottom = MINI_FORK.replace('bottom: "pool" top: "fixed"', 'bottom: "poool" top: "fixed"')
    with pytest.raises(LayerError, match="'fixed'.*'poool'"):
        CaffeNet(load_prototxt(bad_bottom))
    too_big = MINI_FORK.replace("kernel_size: 3 stride: 2 pad: 1 bias_term", "kernel_size: 99 "
                                "stride: 2 pad: 1 bias_term")
    with pytest.raises(LayerError, match="'conv1/a'.*does not fit"):
        CaffeNet(load_prototxt(too_big))
    mismatch = MINI_FORK + ('layer { name: "sum" type: "Eltwise" bottom: "fixed" bottom: "zoom" '
                            'top: "sum" }\n')
    with pytest.raises(LayerError, match="'sum'.*one shape"):
        CaffeNet(load_prototxt(mismatch))


def test_runtime_shape_error_names_the_layer():
    cnet = CaffeNet(load_prototxt(MINI_FORK))
    with pytest.raises(LayerError, match="'conv1/a'"):
        cnet(torch.randn(1, 5, 33, 33))


def test_weights_by_layer_name_ignored_missing_and_shape_errors():
    net = load_prototxt(MINI_FORK)
    weights = random_weights(net)
    extra = copy.deepcopy(weights)
    extra.layers.append(Layer("conv6_1", "Convolution", ["x"], ["y"], None,
                              [np.zeros((3, 3, 1, 1), np.float32)]))
    extra.layers.append(Layer("conv1_conv1/relu_0_split", "Split", ["conv1"],
                              ["a", "b"], None, []))
    extra.layers = [l for l in extra.layers if l.name != "conv1/bn"]
    cnet = CaffeNet(net)
    report = cnet.load_caffe_weights(extra)
    assert report.ignored == ["conv6_1", "conv1_conv1/relu_0_split"]
    assert report.missing == ["conv1/bn"]
    assert torch.equal(cnet.layers["conv1_a"].weight, blobs_of(weights, "conv1/a")[0])

    wrong = copy.deepcopy(weights)
    wrong.layers[0].blobs[0] = np.zeros((4, 3, 5, 5), np.float32)
    with pytest.raises(LayerError, match=r"'conv1/a'.*\(4, 3, 5, 5\).*\(4, 3, 3, 3\)"):
        CaffeNet(net, wrong)
    count = copy.deepcopy(weights)
    count.layers[0].blobs.append(np.zeros(4, np.float32))           # a bias the net lacks
    with pytest.raises(LayerError, match="'conv1/a'.*number of blobs"):
        CaffeNet(net, count)


def test_legacy_4d_blob_shapes_are_accepted():
    net = load_prototxt(MINI_UPSTREAM)
    weights = random_weights(net)
    legacy = copy.deepcopy(weights)
    for layer in legacy.layers:
        if layer.name in ("ip", "bn"):
            layer.blobs = [b.reshape((1,) * (4 - b.ndim) + b.shape) for b in layer.blobs]
    cnet = CaffeNet(net, legacy)
    assert torch.equal(cnet.layers["ip"].weight, blobs_of(weights, "ip")[0])
    assert tuple(cnet.layers["bn"].scale_factor.shape) == (1,)
    bad = copy.deepcopy(weights)
    bad.layers[[l.name for l in bad.layers].index("ip")].blobs[0] = \
        blobs_of(weights, "ip")[0].numpy().reshape(1, 5, 1, 96)
    with pytest.raises(LayerError, match=r"\(1, 5, 1, 96\).*\(5, 96\)"):
        CaffeNet(net, bad)


def test_hdf5_and_caffemodel_weights_agree(tmp_path):
    import oracle
    case = next(c for c in oracle.cases("layers") if c.name == "layers/conv_group_stride_bias")
    a = CaffeNet.from_files(case.prototxt, case.caffemodel)
    b = CaffeNet.from_files(case.prototxt, case.h5)
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k


def test_state_dict_keys_follow_layer_names():
    net = load_prototxt(MINI_FORK)
    cnet = CaffeNet(net)
    keys = set(cnet.state_dict())
    assert keys == {"layers.conv1_a.weight", "layers.conv1_bn.slope", "layers.conv1_bn.bias",
                    "layers.conv1_bn.mean", "layers.conv1_bn.var"}
    assert cnet.blob_keys[("conv1/bn", 3)] == "layers.conv1_bn.var"
    assert [n for n, _ in cnet.named_parameters()] == [
        "layers.conv1_a.weight", "layers.conv1_bn.slope", "layers.conv1_bn.bias"]
    assert cnet.caffe_blobs()["conv1/bn"][0].shape == (1, 4, 1, 1)
    clash = load_prototxt(MINI_FORK.replace('name: "conv1/relu"', 'name: "conv1_a"'))
    assert CaffeNet(clash).module_keys["conv1_a"] == "conv1_a_2"


def test_released_type_aliases_build():
    text = MINI_FORK.replace('type: "BN"', 'type: "BNData"').replace(
        'type: "Convolution"', 'type: "HoleConvolutionData"')
    cnet = CaffeNet(load_prototxt(text))
    assert isinstance(cnet.layers["conv1_bn"], BN)
    assert isinstance(cnet.layers["conv1_a"], Convolution)


def test_autocast_bf16_and_channels_last_work_and_fp32_stays_default():
    net = load_prototxt(MINI_FORK)
    cnet = CaffeNet(net, random_weights(net))
    x = torch.randn(2, 3, 33, 33)
    ref = cnet(x)
    assert all(v.dtype == torch.float32 for v in ref.values())
    cl = cnet(x.contiguous(memory_format=torch.channels_last))
    for k in ref:
        # same arithmetic, another memory order: only convolution summation order differs
        assert rel(cl[k], ref[k]) <= 1e-5, k
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = cnet(x)
    for k in ref:
        assert torch.isfinite(low[k].float()).all()
        # bf16 keeps 8 significant bits: a few convolution terms stay within 5%
        assert rel(low[k].float(), ref[k]) <= 5e-2, k
    assert all(v.dtype == torch.float32 for v in cnet(x).values())   # nothing left switched


def test_caffemodel_as_structure_with_caffe_inserted_split_layers():
    """A caffemodel written by Caffe holds its Split layers and input names without
    shapes: it builds when the input shape is given, and gives the oracle's blobs."""
    import oracle
    from caffe_proto import load_caffemodel
    case = next(c for c in oracle.cases("layers") if c.name == "layers/pool_kernel_hw")
    net = load_caffemodel(case.caffemodel)
    assert "Split" in [l.type for l in net.layers]
    with pytest.raises(LayerError, match="input_shapes"):
        CaffeNet(net)
    blobs = case.blobs()
    cnet = CaffeNet(net, net, input_shapes={"data": blobs["data"].shape})
    out = cnet(data=torch.from_numpy(blobs["data"]))
    for key in ("pool_ave", "pool_max"):
        np.testing.assert_array_equal(out[key].numpy(), blobs[key])   # pooling is exact


def test_from_files_refuses_learnable_layers_without_weights(tmp_path):
    """The converter's rule, in the library: weights that leave a learnable layer at its
    initial values are an error naming it, unless asked for."""
    from psp_torch.layers import LayerError
    case = next(c for c in oracle.cases("layers") if c.name == "layers/conv_dilated")
    renamed = tmp_path / "renamed.prototxt"
    renamed.write_text(case.prototxt.read_text().replace('"conv_d4"', '"conv_other"'))
    with pytest.raises(LayerError, match=r"1 learnable layer\(s\).*conv_other \(Convolution\)"):
        CaffeNet.from_files(renamed, case.caffemodel)
    cnet = CaffeNet.from_files(renamed, case.caffemodel, allow_missing=True)
    assert cnet.weight_report.missing == ["conv_other"] and not cnet.training
    assert not CaffeNet.from_files(case.prototxt, case.caffemodel).weight_report.missing
