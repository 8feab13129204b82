"""Text format: the released deploy prototxts, legacy headers, V1 nets, both dialects,
syntax errors with line numbers, and net_to_prototxt round trips."""
from collections import Counter
from pathlib import Path

import pytest

from caffe_proto import (PSPNET, UPSTREAM, CaffeFormatError, load_prototxt, net_to_prototxt)

PROTOTXT = Path(__file__).parent / "data" / "prototxt"
VOC = PROTOTXT / "pspnet101_VOC2012_473.prototxt"


@pytest.fixture(scope="module")
def voc():
    return load_prototxt(VOC)


def test_voc_layer_counts(voc):
    assert voc.dialect == PSPNET
    assert voc.inputs == {"data": (1, 3, 473, 473)}
    assert Counter(layer.type for layer in voc.layers) == {
        "Convolution": 112, "BN": 111, "ReLU": 107, "Eltwise": 33,
        "Pooling": 5, "Interp": 5, "Dropout": 1, "Concat": 1}


def test_voc_dilations_paddings_and_pools(voc):
    convs = {l.name: l.param.convolution_param for l in voc.layers if l.type == "Convolution"}
    dilated = Counter((tuple(c.dilation), tuple(c.pad)) for c in convs.values() if c.dilation)
    assert dilated == {((2,), (2,)): 23, ((4,), (4,)): 3}
    assert tuple(convs["conv1_1_3x3_s2"].stride) == (2,) and tuple(convs["conv1_1_3x3_s2"].pad) == (1,)
    assert tuple(convs["conv3_1_3x3"].stride) == (2,)        # VOC: the stride-2 3x3 of stage 3
    assert convs["conv5_3_pool1_conv"].bias_term is False and convs["conv6"].bias_term is True
    pools = [(l.name, l.param.pooling_param) for l in voc.layers if l.type == "Pooling"]
    assert [(n, p.pool, p.kernel_size, p.stride, p.pad) for n, p in pools] == [
        ("pool1_3x3_s2", 0, 3, 2, 1), ("conv5_3_pool1", 1, 60, 60, 0),
        ("conv5_3_pool2", 1, 30, 30, 0), ("conv5_3_pool3", 1, 20, 20, 0),
        ("conv5_3_pool6", 1, 10, 10, 0)]
    interps = {l.name: l.param.interp_param for l in voc.layers if l.type == "Interp"}
    assert interps["conv6_interp"].zoom_factor == 8 and not interps["conv6_interp"].HasField("height")
    assert (interps["conv5_3_pool1_interp"].height, interps["conv5_3_pool1_interp"].width) == (60, 60)
    bns = [l.param for l in voc.layers if l.type == "BN"]
    assert all(not p.bn_param.HasField("eps") and p.bn_param.eps == pytest.approx(1e-5) for p in bns)
    concat = voc.layer("conv5_3_concat")
    assert concat.bottom == ["conv5_3", "conv5_3_pool6_interp", "conv5_3_pool3_interp",
                             "conv5_3_pool2_interp", "conv5_3_pool1_interp"]


@pytest.mark.parametrize("name,size,kernels", [
    ("pspnet50_ADE20K_473", 473, [60, 30, 20, 10]),
    ("pspnet101_cityscapes_713", 713, [90, 45, 30, 15]),
])
def test_other_released_prototxts(name, size, kernels):
    net = load_prototxt(PROTOTXT / f"{name}.prototxt")
    assert net.dialect == PSPNET and net.inputs == {"data": (1, 3, size, size)}
    assert [l.param.pooling_param.kernel_size for l in net.layers if l.type == "Pooling"][1:] == kernels
    ade = name.startswith("pspnet50")
    stride2 = "conv3_1_1x1_reduce" if ade else "conv3_1_3x3"
    assert tuple(net.layer(stride2).param.convolution_param.stride) == (2,)


def test_input_shape_header_and_text_argument():
    net = load_prototxt('name: "n"\ninput: "a"\ninput_shape { dim: 1 dim: 2 dim: 3 dim: 4 }\n'
                        'input: "b"\ninput_shape { dim: 5 }\n'
                        'layer { name: "r" type: "ReLU" bottom: "a" top: "r" }')
    assert net.name == "n" and net.inputs == {"a": (1, 2, 3, 4), "b": (5,)}
    assert net.dialect == UPSTREAM and net.source == "<text>"


def test_upstream_input_layer():
    net = load_prototxt('layer { name: "in" type: "Input" top: "data" '
                        'input_param { shape { dim: 1 dim: 3 dim: 8 dim: 9 } } }\n'
                        'layer { name: "crop" type: "Crop" bottom: "data" bottom: "data" top: "c" '
                        'crop_param { axis: 2 offset: 1 } }')
    assert net.dialect == UPSTREAM
    assert net.inputs == {"data": (1, 3, 8, 9)}
    assert net.layer("crop").param.crop_param.offset == [1]


def test_v1_layers_net():
    net = load_prototxt('input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 5\ninput_dim: 5\n'
                        'layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" '
                        'convolution_param { num_output: 4 kernel_size: 3 } }\n'
                        'layers { name: "relu" type: RELU bottom: "conv" top: "conv" }\n'
                        'layers { name: "pool" type: POOLING bottom: "conv" top: "pool" '
                        'pooling_param { pool: AVE kernel_size: 2 stride: 2 } }')
    assert [(l.name, l.type) for l in net.layers] == [
        ("conv", "Convolution"), ("relu", "ReLU"), ("pool", "Pooling")]
    assert net.layer("conv").param.convolution_param.num_output == 4
    assert net.inputs == {"data": (1, 3, 5, 5)}


def test_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\nlayer {\n  name: "a"\n  type: "ReLU"\n  bottom "a"\n}\n')
    with pytest.raises(CaffeFormatError) as info:
        load_prototxt(path)
    assert info.value.line == 5 and str(path) in str(info.value) and "line 5" in str(info.value)


def test_unknown_field_is_an_error_with_its_line():
    with pytest.raises(CaffeFormatError, match="line 2"):
        load_prototxt('name: "x"\nlayer { name: "a" type: "ReLU" no_such_param { } }\n')


def test_bad_files(tmp_path):
    with pytest.raises(CaffeFormatError, match="cannot read"):
        load_prototxt(tmp_path / "missing.prototxt")
    (tmp_path / "empty.prototxt").write_text("   \n")
    with pytest.raises(CaffeFormatError, match="empty"):
        load_prototxt(tmp_path / "empty.prototxt")
    (tmp_path / "bin.prototxt").write_bytes(b"\x0a\x00\xa2\x06\x00\xff")
    with pytest.raises(CaffeFormatError, match="bin.prototxt"):
        load_prototxt(tmp_path / "bin.prototxt")
    (tmp_path / "latin1.prototxt").write_bytes(b'name: "caf\xe9"\n')
    with pytest.raises(CaffeFormatError, match="UTF-8"):
        load_prototxt(tmp_path / "latin1.prototxt")


def test_mixed_dialects_are_refused():
    with pytest.raises(CaffeFormatError, match="143"):
        load_prototxt('layer { name: "in" type: "Input" top: "d" input_param { shape { dim: 1 } } }\n'
                      'layer { name: "i" type: "Interp" bottom: "d" top: "e" interp_param { zoom_factor: 2 } }')


def test_fork_types_in_text_choose_the_fork():
    net = load_prototxt('layer { name: "bn" type: "BNData" bottom: "d" top: "d" }')
    assert net.dialect == PSPNET
    # a comment mentioning a field does not decide the dialect
    net = load_prototxt('# interp_param would be the fork\nlayer { name: "c" type: "Crop" '
                        'bottom: "a" bottom: "b" top: "c" crop_param { axis: 2 } }')
    assert net.dialect == UPSTREAM


@pytest.mark.parametrize("name", ["pspnet101_VOC2012_473", "pspnet50_ADE20K_473",
                                  "pspnet101_cityscapes_713"])
def test_net_to_prototxt_round_trip(name):
    net = load_prototxt(PROTOTXT / f"{name}.prototxt")
    again = load_prototxt(net_to_prototxt(net))
    assert again.dialect == net.dialect and again.inputs == net.inputs
    assert [l.param for l in again.layers] == [l.param for l in net.layers]


def test_net_to_prototxt_upstream_with_input_layer_and_escapes():
    net = load_prototxt('name: "we\\"ird"\nlayer { name: "in" type: "Input" top: "data" '
                        'input_param { shape { dim: 2 dim: 3 } } }')
    text = net_to_prototxt(net)
    again = load_prototxt(text)
    assert again.name == 'we"ird' and again.inputs == {"data": (2, 3)}
    assert "input:" not in text          # the Input layer declares it, not a header
