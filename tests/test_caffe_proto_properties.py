"""Property-based tests (hypothesis): random nets serialized by protobuf read back identically
by the fast reader; random corruptions of real caffemodels raise CaffeFormatError and
nothing else; the writer round-trips what the reader gives."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import oracle
from caffe_proto import (PSPNET, UPSTREAM, CaffeFormatError, load_caffemodel, parse_caffemodel,
                         save_caffemodel)
from caffe_proto import caffe_pb2 as pb
from caffe_proto.prototxt import net_from_message

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
shapes = st.lists(st.integers(0, 4), min_size=0, max_size=4).map(tuple)
values32 = st.floats(width=32, allow_nan=False)


@st.composite
def blobs(draw):
    shape = draw(shapes)
    data = draw(arrays(np.float32, shape, elements=values32))
    blob = pb.BlobProto()
    style = draw(st.sampled_from(["shape", "legacy", "double", "none"]))
    if style == "legacy" or (style == "none" and data.ndim != 1):
        shape4 = (1,) * (4 - min(data.ndim, 4)) + data.shape[:4] if data.ndim <= 4 else data.shape
        data = data.reshape(shape4)
        blob.num, blob.channels, blob.height, blob.width = shape4
    elif style != "none":
        blob.shape.dim.extend(data.shape)
    if style == "double":
        blob.double_data.extend(data.astype(np.float64).ravel().tolist())
    else:
        blob.data.extend(data.ravel().tolist())
    if draw(st.booleans()):
        blob.diff.extend([1.0] * min(data.size, 3))
    return blob, data


FORK_LAYERS = ["Interp", "BN", "BNData", "ConvolutionData", "HoleConvolutionData"]
COMMON_LAYERS = ["Convolution", "ReLU", "Pooling", "Eltwise", "Concat", "Dropout", "Mystery", ""]


@st.composite
def nets(draw):
    fork = draw(st.booleans())
    cls = pb.PSPNetParameter if fork else pb.NetParameter
    msg = cls(name=draw(names))
    n_inputs = draw(st.integers(0, 2))
    for _ in range(n_inputs):
        msg.input.append(draw(names))
        msg.input_shape.add().dim.extend(draw(shapes.filter(len)))   # () means "undeclared"
    expected = []
    types = draw(st.lists(st.sampled_from(COMMON_LAYERS + (FORK_LAYERS if fork else ["Input", "Crop"])),
                          max_size=6))
    if fork:
        types.append(draw(st.sampled_from(FORK_LAYERS)))
    for type_ in types:
        layer = msg.layer.add(name=draw(names), type=type_)
        layer.bottom.extend(draw(st.lists(names, max_size=2)))
        layer.top.extend(draw(st.lists(names, max_size=2)))
        if type_ == "Interp":
            layer.interp_param.zoom_factor = draw(st.integers(1, 9))
        elif type_ == "Input":
            layer.input_param.shape.add().dim.extend(draw(shapes))
        elif type_ == "Crop":
            layer.crop_param.offset.extend(draw(st.lists(st.integers(0, 9), max_size=3)))
        elif type_.startswith(("Convolution", "Hole")):
            layer.convolution_param.num_output = draw(st.integers(0, 2 ** 31))
            layer.convolution_param.dilation.extend(draw(st.lists(st.integers(1, 4), max_size=2)))
        layer.loss_weight.extend(draw(st.lists(values32, max_size=2)))
        arrays_ = []
        for blob, data in draw(st.lists(blobs(), max_size=3)):
            layer.blobs.append(blob)
            arrays_.append(data)
        expected.append(arrays_)
    return msg, (PSPNET if fork else UPSTREAM), expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nets())
def test_random_nets_read_back_identically(case):
    msg, dialect, expected = case
    data = msg.SerializeToString()
    fast = parse_caffemodel(data)
    slow = net_from_message(type(msg).FromString(data), dialect)
    assert (fast.name, fast.dialect, fast.inputs) == (slow.name, slow.dialect, slow.inputs)
    for layer, ref, arrays_ in zip(fast.layers, slow.layers, expected):
        assert (layer.name, layer.type, layer.bottom, layer.top) == (ref.name, ref.type, ref.bottom, ref.top)
        assert layer.param == ref.param
        assert len(layer.blobs) == len(arrays_) == len(ref.blobs)
        for got, want, via_protobuf in zip(layer.blobs, arrays_, ref.blobs):
            assert got.dtype == np.float32 and got.shape == want.shape == via_protobuf.shape
            assert got.tobytes() == want.tobytes() == via_protobuf.tobytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(nets())
def test_writer_round_trip(tmp_path, case):
    msg, _, _ = case
    net = parse_caffemodel(msg.SerializeToString())
    path = tmp_path / "rt.caffemodel"
    save_caffemodel(net, path)
    again = load_caffemodel(path)
    assert again.dialect == net.dialect and again.inputs == net.inputs and again.name == net.name
    for a, b in zip(net.layers, again.layers, strict=True):
        assert a.param == b.param
        assert [x.shape for x in a.blobs] == [y.shape for y in b.blobs]
        assert all(x.tobytes() == y.tobytes() for x, y in zip(a.blobs, b.blobs))


SEEDS = [c.caffemodel.read_bytes() for c in oracle.cases("layers") if c.caffemodel.stat().st_size > 200]


@st.composite
def corruptions(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "varint"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif op == "varint":
            data[at:at] = bytes([0xFF] * draw(st.integers(1, 10))) + bytes([draw(st.integers(0, 127))])
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(corruptions())
def test_corrupted_caffemodels_raise_only_caffe_format_error(data):
    try:
        net = parse_caffemodel(data, "fuzz.caffemodel")
    except CaffeFormatError as exc:
        assert str(exc).startswith("fuzz.caffemodel")
        return
    for layer in net.layers:
        assert isinstance(layer.name, str) and isinstance(layer.type, str)
        assert sum(b.nbytes for b in layer.blobs) <= len(data)
