"""Binary caffemodels and HDF5 weights: the fast reader against protobuf's own parse,
every encoding Caffe has used, the released files' dialect quirks, the writer, and bad
input with file / offset / field path in the message."""
import json
import struct
import subprocess
import sys

import numpy as np
import pytest

import oracle
from caffe_proto import (PSPNET, UPSTREAM, CaffeFormatError, Layer, Net, load_caffemodel,
                         load_hdf5, load_weights, parse_caffemodel, save_caffemodel)
from caffe_proto import caffe_pb2 as pb
from caffe_proto.prototxt import net_from_message

CASES = oracle.cases()
ROOT = oracle.ORACLE.parent.parent.parent


# ---------------------------------------------------------------- wire helpers

def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def key(number, wire):
    return varint(number << 3 | wire)


def ld(number, payload):
    return key(number, 2) + varint(len(payload)) + payload


def vi(number, value):
    return key(number, 0) + varint(value)


def string(number, s):
    return ld(number, s.encode() if isinstance(s, str) else s)


def layer_bytes(name, type_, *fields):
    return ld(100, string(1, name) + string(2, type_) + b"".join(fields))


def same_blobs(a, b):
    return (len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype == np.float32
                                     and x.tobytes() == y.tobytes() for x, y in zip(a, b)))


def protobuf_net(data, dialect, source="<memory>"):
    cls = pb.PSPNetParameter if dialect == PSPNET else pb.NetParameter
    return net_from_message(cls.FromString(data), dialect, source)


def assert_same_net(fast, slow):
    assert (fast.name, fast.dialect, fast.inputs) == (slow.name, slow.dialect, slow.inputs)
    assert len(fast.layers) == len(slow.layers)
    for a, b in zip(fast.layers, slow.layers):
        assert (a.name, a.type, a.bottom, a.top) == (b.name, b.type, b.bottom, b.top)
        assert type(a.param) is type(b.param) and a.param == b.param, a.name
        assert same_blobs(a.blobs, b.blobs), a.name


# ---------------------------------------------------------------- oracle files

@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_oracle_caffemodel_equals_protobuf_parse(case):
    data = case.caffemodel.read_bytes()
    fast = load_caffemodel(case.caffemodel)
    assert fast.source == str(case.caffemodel)
    assert_same_net(fast, protobuf_net(data, fast.dialect, str(case.caffemodel)))
    listed = case.meta["layers"]                  # what Caffe reported when it wrote the file
    assert listed
    by_name = fast.by_name()
    for entry in listed:
        layer = by_name[entry["name"]]
        assert (layer.type, layer.top) == (entry["type"], entry["top"])   # bottoms: Caffe's splits
        assert layer.blob_shapes == [tuple(s) for s in entry.get("param_shapes", [])]
    expected = PSPNET if any(l.type in ("BN", "Interp") for l in fast.layers) else UPSTREAM
    assert fast.dialect == expected


@pytest.mark.parametrize("case", [c for c in CASES if c.h5], ids=[c.name for c in CASES if c.h5])
def test_h5_twin_gives_the_same_arrays(case):
    binary = {l.name: l.blobs for l in load_caffemodel(case.caffemodel).layers if l.blobs}
    h5 = load_weights(case.h5)
    assert {l.name for l in h5.layers} == set(binary)
    for layer in h5.layers:
        assert layer.type == "" and layer.param.name == layer.name
        assert same_blobs(layer.blobs, binary[layer.name])
    assert [l.name for l in load_hdf5(case.h5).layers] == [l.name for l in h5.layers]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_writer_reproduces_caffes_own_bytes(case, tmp_path):
    out = tmp_path / "again.caffemodel"
    save_caffemodel(load_caffemodel(case.caffemodel), out)
    assert out.read_bytes() == case.caffemodel.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["again.caffemodel"]   # no temp file left


def test_slim_pspnet_layers_and_shapes():
    net = load_caffemodel(oracle.ORACLE / "nets" / "pspnet101_voc_slim" / "weights.caffemodel")
    assert net.dialect == PSPNET
    bn = net.layer("conv1_1_3x3_s2/bn")
    assert bn.type == "BN" and len(bn.blobs) == 4 and all(b.shape[::2] == (1, 1) for b in bn.blobs)
    interp = net.layer("conv6_interp")
    assert isinstance(interp.param, pb.PSPLayerParameter) and interp.param.interp_param.zoom_factor == 8
    assert net.layer("conv6").blob_shapes[0][0] == 21


def test_arrays_are_private_copies(tmp_path):
    src = oracle.ORACLE / "layers" / "innerproduct" / "weights.caffemodel"
    path = tmp_path / "w.caffemodel"
    path.write_bytes(src.read_bytes())
    net = load_caffemodel(path)
    before = [b.copy() for b in net.layer("ip").blobs]
    path.write_bytes(b"\x00" * path.stat().st_size)           # overwritten in place
    path.unlink()
    assert same_blobs(net.layer("ip").blobs, before)
    assert all(b.flags.writeable for b in net.layer("ip").blobs)


# ---------------------------------------------------------------- encodings

def test_released_style_types_unknown_fields_and_training_layers():
    msg = pb.PSPNetParameter(name="pspnet")
    data = msg.SerializeToString()
    conv = pb.BlobProto(shape=pb.BlobShape(dim=[2, 1, 1, 1]), data=[1.5, -2.0]).SerializeToString()
    bn = pb.BlobProto(shape=pb.BlobShape(dim=[1, 2, 1, 1]), data=[0.5, 0.25]).SerializeToString()
    data += layer_bytes("data", "ImageSegData", string(4, "data"), string(4, "label"),
                        ld(100, vi(2, 473)))                         # transform_param: unknown here
    data += layer_bytes("conv1", "ConvolutionData", string(3, "data"), string(4, "conv1"),
                        ld(7, conv), ld(106, vi(1, 2)))
    data += layer_bytes("conv1/bn", "BNData", string(3, "conv1"), string(4, "conv1"),
                        ld(7, bn), ld(7, bn), ld(7, bn), ld(7, bn), ld(152, vi(5, 1)))
    data += layer_bytes("conv2", "HoleConvolutionData", string(3, "conv1"), string(4, "conv2"),
                        ld(7, conv), ld(106, vi(18, 2)))
    data += layer_bytes("up", "Interp", string(3, "conv2"), string(4, "up"), ld(143, vi(3, 8)))
    data += layer_bytes("loss", "SoftmaxWithLoss", string(3, "up"), string(3, "label"),
                        ld(101, vi(2, 255)))                          # loss_param: unknown
    data += layer_bytes("acc", "SegAccuracy", string(3, "up"), ld(144, vi(1, 255)))
    net = parse_caffemodel(data)
    assert net.dialect == PSPNET and net.name == "pspnet"
    assert [l.type for l in net.layers] == ["ImageSegData", "ConvolutionData", "BNData",
                                            "HoleConvolutionData", "Interp", "SoftmaxWithLoss",
                                            "SegAccuracy"]
    assert all(isinstance(l.param, pb.PSPLayerParameter) for l in net.layers)
    assert net.layer("up").param.interp_param.zoom_factor == 8
    assert net.layer("conv1/bn").param.bn_param.frozen is True
    assert net.layer("conv2").param.convolution_param.dilation == [2]
    assert net.layer("conv1").blobs[0].ravel().tolist() == [1.5, -2.0]
    # unknown fields are kept with the layer: they survive re-serialization
    assert ld(100, vi(2, 473)) in net.layer("data").param.SerializeToString()
    assert ld(144, vi(1, 255)) in net.layer("acc").param.SerializeToString()
    assert_same_net(net, protobuf_net(data, PSPNET))


def test_field_143_follows_the_layer_type():
    shape = ld(1, ld(1, varint(1) + varint(3) + varint(5) + varint(7)))   # shape { dim: packed }
    data = layer_bytes("in", "Input", string(4, "data"), ld(143, shape))
    data += layer_bytes("up", "Interp", string(3, "data"), string(4, "up"), ld(143, vi(1, 9) + vi(2, 11)))
    data += layer_bytes("crop", "Crop", string(3, "up"), string(3, "data"), string(4, "c"),
                        ld(144, vi(1, 2)))
    net = parse_caffemodel(data)
    assert net.dialect == PSPNET                        # a fork type is present
    assert isinstance(net.layer("in").param, pb.LayerParameter)
    assert net.inputs == {"data": (1, 3, 5, 7)}
    up = net.layer("up").param
    assert isinstance(up, pb.PSPLayerParameter) and (up.interp_param.height, up.interp_param.width) == (9, 11)
    assert net.layer("crop").param.crop_param.axis == 2

    upstream = parse_caffemodel(layer_bytes("in", "Input", string(4, "data"), ld(143, shape)))
    assert upstream.dialect == UPSTREAM and upstream.inputs == {"data": (1, 3, 5, 7)}


def test_v1_layers_with_legacy_shapes():
    blob = pb.BlobProto(num=2, channels=3, height=1, width=1, data=[1, 2, 3, 4, 5, 6])
    v1 = pb.V1LayerParameter(name="conv", type=pb.V1LayerParameter.CONVOLUTION, bottom=["data"],
                             top=["conv"], blobs=[blob, pb.BlobProto(num=1, channels=1, height=1,
                                                                   width=2, data=[7, 8])])
    v1.convolution_param.num_output = 2
    msg = pb.NetParameter(name="old", input=["data"], input_dim=[1, 3, 4, 4], layers=[v1])
    msg.layers.add(name="relu", type=pb.V1LayerParameter.RELU, bottom=["conv"], top=["conv"])
    data = msg.SerializeToString() + ld(2, string(4, "weird") + vi(5, 99))   # enum unknown here
    net = parse_caffemodel(data)
    assert net.inputs == {"data": (1, 3, 4, 4)} and net.dialect == UPSTREAM
    assert [(l.name, l.type) for l in net.layers] == [("conv", "Convolution"), ("relu", "ReLU"),
                                                      ("weird", "")]
    assert net.layer("conv").blob_shapes == [(2, 3, 1, 1), (1, 1, 1, 2)]
    assert net.layer("conv").param.convolution_param.num_output == 2
    assert_same_net(net, protobuf_net(data, UPSTREAM))


def _blob_layer(blob_payload, name="l", type_="Convolution"):
    return layer_bytes(name, type_, ld(7, blob_payload))


def test_unpacked_double_and_diff_encodings_match_protobuf():
    values = np.linspace(-3, 3, 12, dtype=np.float32)
    unpacked = b"".join(key(5, 5) + struct.pack("<f", v) for v in values[:7])
    packed_rest = ld(5, values[7:].tobytes())
    shape = ld(7, ld(1, varint(3) + varint(4)))
    diff = ld(6, np.ones(12, np.float32).tobytes()) + b"".join(key(6, 5) + b"\0\0\x80?" for _ in range(3))
    mixed = _blob_layer(shape + diff + unpacked + packed_rest + key(9, 1) + struct.pack("<d", 1.0))
    doubles = np.array([0.1, 1e-40, 3e38, -7.25], np.float64)
    dbl = _blob_layer(vi(1, 1) + vi(2, 4) + vi(3, 1) + vi(4, 1) + ld(5, np.zeros(4, np.float32).tobytes())  # double wins
                      + b"".join(key(8, 1) + struct.pack("<d", v) for v in doubles[:2])
                      + ld(8, doubles[2:].tobytes()), name="d")
    long_tag = _blob_layer(ld(7, ld(1, varint(1))) + b"\xad\x00" + struct.pack("<f", 2.5), name="t")
    no_shape = _blob_layer(ld(5, values[:5].tobytes()), name="n")
    both_shapes = _blob_layer(ld(7, ld(1, varint(6))) + vi(2, 6) + vi(1, 1) + vi(3, 1) + vi(4, 1)
                              + ld(5, values[:6].tobytes()), name="b")
    data = mixed + dbl + long_tag + no_shape + both_shapes
    net = parse_caffemodel(data)
    assert_same_net(net, protobuf_net(data, UPSTREAM))
    assert net.layer("l").blobs[0].tobytes() == values.reshape(3, 4).tobytes()
    assert net.layer("d").blobs[0].ravel().tolist() == doubles.astype(np.float32).tolist()
    assert net.layer("t").blobs[0].tolist() == [2.5]
    assert net.layer("n").blob_shapes == [(5,)]
    assert net.layer("b").blob_shapes == [(1, 6, 1, 1)]      # legacy fields win, as in Caffe


def test_writer_round_trip_of_odd_blobs(tmp_path):
    rng = np.random.default_rng(0)
    blobs = [rng.standard_normal((3, 2, 5, 5)).astype(np.float32), np.zeros((0,), np.float32),
             np.array(3.5, np.float32), rng.standard_normal(7).astype(np.float64),
             np.asfortranarray(rng.standard_normal((4, 3)).astype(np.float32)),
             np.array([np.nan, np.inf, -0.0, 1e-45], np.float32)]
    fork = pb.PSPLayerParameter(name="i", type="Interp", bottom=["x"], top=["y"])
    fork.interp_param.zoom_factor = 8
    up = pb.LayerParameter(name="in", type="Input", top=["data"])
    up.input_param.shape.add(dim=[1, 3, 4, 4])
    layers = [Layer("in", "Input", [], ["data"], up, []),
              Layer("w", "Convolution", ["data"], ["x"], pb.PSPLayerParameter(name="w", type="Convolution"), blobs),
              Layer("i", "Interp", ["x"], ["y"], fork, [])]
    net = Net("rt", PSPNET, {"data": (1, 3, 4, 4)}, layers)
    path = tmp_path / "rt.caffemodel"
    save_caffemodel(net, path)
    again = load_caffemodel(path)
    assert again.dialect == PSPNET and again.inputs == {"data": (1, 3, 4, 4)}
    for a, b in zip(net.layers, again.layers):
        assert a.param == b.param
        assert len(a.blobs) == len(b.blobs)
        for x, y in zip(a.blobs, b.blobs):
            assert x.shape == y.shape and np.asarray(x, np.float32).tobytes() == y.tobytes()
    assert again.layer("i").param.interp_param.zoom_factor == 8


def test_writer_is_atomic_on_failure(tmp_path):
    path = tmp_path / "w.caffemodel"
    path.write_bytes(b"old")

    bad = Layer("x", "Convolution", [], [], pb.LayerParameter(name="x"), [object()])
    with pytest.raises(Exception):
        save_caffemodel(Net("n", UPSTREAM, {}, [bad]), path)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["w.caffemodel"]


# ---------------------------------------------------------------- bad input

def _fails(data, *fragments):
    with pytest.raises(CaffeFormatError) as info:
        parse_caffemodel(data, "model.caffemodel")
    message = str(info.value)
    assert message.startswith("model.caffemodel")
    for fragment in fragments:
        assert fragment in message, message
    return info.value


GOOD_BLOB = ld(7, ld(1, varint(2))) + ld(5, b"\0" * 8)


@pytest.mark.parametrize("data,fragments", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", ["JPEG", "byte 0"]),
    (b"PK\x03\x04rest-of-a-pth", ["zip", ".pth"]),
    (b"\x89HDF\r\n\x1a\n\0\0", ["HDF5", "load_weights"]),
    (b"\x80\x02}q\x00.", ["pickle"]),
    (b'name: "x"\nlayer {', ["text prototxt", "load_prototxt"]),
    (layer_bytes("a", "Convolution")[:-3], ["byte 0", "layer[0]", "past the end"]),
    (ld(100, b"\x0a\xff\xff\xff\xff\x0f"), ["layer[0]", "declared length 4294967295"]),
    (b"\xa2\x06" + b"\xff" * 11, ["varint longer than 10 bytes"]),
    (vi(100, 5), ["layer[0]", "wire type varint"]),
    (layer_bytes("a", "C", vi(7, 1)), ["layer[0].blobs", "wire type varint"]),
    (layer_bytes("a", "C", ld(7, vi(5, 1))), ["layer[0].blobs[0].data", "wire type varint"]),
    (layer_bytes("a", "C", ld(7, ld(7, vi(1, 2)) + ld(5, b"\0" * 12))),
     ["layer[0].blobs[0].data", "shape (2,) needs 2 values, found 3"]),
    (layer_bytes("a", "C", ld(7, ld(7, ld(1, varint(1 << 40) + varint(1 << 40))) + ld(5, b"\0" * 4))),
     ["layer[0].blobs[0].data", "impossible dimension"]),
    (layer_bytes("a", "C", ld(7, ld(7, vi(1, (1 << 64) - 4)))), ["impossible dimension -4"]),
    (layer_bytes("a", "C", ld(7, ld(5, b"\0" * 6))), ["layer[0].blobs[0].data", "not a multiple of 4"]),
    (layer_bytes("a", "C", ld(7, ld(7, ld(1, varint(1) * 40)))), ["more than 32 axes"]),
    (layer_bytes("a", "C", ld(7, GOOD_BLOB), ld(7, vi(1, 1) + ld(8, b"\0" * 12))),
     ["layer[0].blobs[1].double_data", "not a multiple of 8"]),
    (ld(100, string(1, b"\xff\xfebad") + string(2, "C")), ["layer[0].name", "UTF-8"]),
    (ld(100, string(1, "ok") + string(3, b"\xc3\x28")), ["layer[0].bottom", "UTF-8"]),
    (string(1, b"\xe2\x82"), ["net.name", "UTF-8"]),
    (ld(2, ld(1, string(1, "v0"))), ["layers[0].layer", "V0"]),
    (layer_bytes("a", "C") + ld(2, string(4, "b")), ["both V2 'layer' and V1 'layers'"]),
    (key(5, 3) + key(6, 3) + key(6, 4), ["group 5 is not closed"]),
    (key(5, 4), ["end-group"]),
    (b"\x0f", ["invalid wire type 7"]),
    (b"\x00", ["invalid field number 0"]),
    (ld(100, ld(106, b"\xff")), ["layer[0]", "does not parse"]),
    (ld(100, ld(1000, b"\0" * ((1 << 20) + 1))), ["layer[0]", "implausibly large"]),
    (layer_bytes("a", "C", ld(7, key(5, 5) + b"\0\0")), ["layer[0].blobs[0]", "truncated 32-bit"]),
])
def test_malformed_input_names_offset_and_field(data, fragments):
    _fails(data, *fragments)


def test_error_path_points_at_the_right_layer_and_blob():
    good = layer_bytes("ok", "Convolution", ld(7, GOOD_BLOB))
    body = good * 17 + layer_bytes("bad", "Convolution", ld(7, ld(7, ld(1, varint(3))) + ld(5, b"\0" * 8)))
    error = _fails(body, "layer[17].blobs[0].data", "needs 3 values, found 2")
    assert error.offset == len(good) * 17 + len(layer_bytes("bad", "Convolution")) + 2
    assert error.field == "layer[17].blobs[0].data" and error.path == "model.caffemodel"


def test_empty_missing_and_truncated_files(tmp_path):
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(CaffeFormatError, match="empty file"):
        load_caffemodel(empty)
    with pytest.raises(CaffeFormatError, match="cannot read"):
        load_caffemodel(tmp_path / "missing.caffemodel")
    data = (oracle.ORACLE / "nets" / "pspnet50_ade20k_slim" / "weights.caffemodel").read_bytes()
    truncated = tmp_path / "half.caffemodel"
    for cut in np.linspace(1, len(data) - 1, 50).astype(int):
        truncated.write_bytes(data[:cut])
        with pytest.raises(CaffeFormatError) as info:
            load_caffemodel(truncated)
        assert str(truncated) in str(info.value) and "byte" in str(info.value)


def test_hdf5_errors(tmp_path):
    h5py = pytest.importorskip("h5py")
    src = next(c.h5 for c in CASES if c.h5).read_bytes()
    broken = tmp_path / "broken.caffemodel.h5"
    broken.write_bytes(src[:len(src) // 2])
    with pytest.raises(CaffeFormatError, match="broken.caffemodel.h5"):
        load_weights(broken)
    with h5py.File(tmp_path / "nodata.h5", "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(CaffeFormatError, match="no 'data' group"):
        load_hdf5(tmp_path / "nodata.h5")
    with h5py.File(tmp_path / "badindex.h5", "w") as f:
        f.create_dataset("data/conv/0", data=np.zeros(3))
        f.create_dataset("data/conv/2", data=np.zeros(3))
    with pytest.raises(CaffeFormatError, match="data/conv"):
        load_hdf5(tmp_path / "badindex.h5")
    with h5py.File(tmp_path / "nested.h5", "w") as f:
        f.create_dataset("data/conv5_3/pool/0", data=np.arange(3, dtype=np.float64))
    net = load_hdf5(tmp_path / "nested.h5")
    assert net.layers[0].name == "conv5_3/pool" and net.layers[0].blobs[0].dtype == np.float32
    with pytest.raises(CaffeFormatError, match="HDF5"):
        load_caffemodel(tmp_path / "nested.h5")


# ---------------------------------------------------------------- inspect CLI

def _inspect(*args):
    return subprocess.run([sys.executable, "-m", "caffe_proto.inspect", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_inspect_table_and_json():
    case = oracle.ORACLE / "layers" / "conv_group_stride_bias"
    table = _inspect(case / "weights.caffemodel")
    assert table.returncode == 0
    assert "dialect upstream" in table.stdout and "6x2x3x3" in table.stdout and "114" in table.stdout
    info = json.loads(_inspect(case / "weights.caffemodel.h5", "--json").stdout)
    assert info["kind"] == "hdf5" and info["layers"][0]["blob_shapes"] == [[6, 2, 3, 3], [6]]
    info = json.loads(_inspect(ROOT / "tests" / "data" / "prototxt" / "pspnet50_ADE20K_473.prototxt",
                               "--json").stdout)
    assert info["dialect"] == "pspnet" and len(info["layers"]) == 205
    assert set(info["layers"][0]) >= {"name", "type", "bottom", "top", "blob_shapes"}


def test_inspect_bad_file_exits_nonzero(tmp_path):
    bad = tmp_path / "model.caffemodel"
    bad.write_bytes(b"\xff\xd8\xff\xe0JFIF")
    result = _inspect(bad)
    assert result.returncode == 1 and "JPEG" in result.stderr and str(bad) in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- bounded work

def _refusal_work(data: bytes, what: str, limits) -> tuple[int, int]:
    """(fields walked, traced peak bytes) until `data` is refused for too many `what`."""
    import tracemalloc

    from caffe_proto import binary, wire

    src = wire.Source(data, "model.caffemodel", limits=limits)
    tracemalloc.start()
    try:
        with pytest.raises(CaffeFormatError, match=f"more than .* {what}"):
            binary._parse_net(src)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return src.fields, peak


@pytest.mark.parametrize("what, make", [
    ("fields", lambda n: vi(1, 0) * n),                                  # tiny top-level fields
    ("fields", lambda n: key(1, 3) + (key(2, 3) + key(2, 4)) * n + key(1, 4)),  # one group of
                                                                         # many empty groups
    ("layers", lambda n: b"\xa2\x06\x00" * n),                           # empty layers
    ("blobs", lambda n: ld(100, ld(7, b"") * n)),                        # empty blobs, one layer
])
def test_pathological_structure_is_refused_after_bounded_work(what, make):
    """Work is counted, not timed: the reader walks at most `Limits.fields` fields (group
    tags included) and `Limits.layers` / `.blobs` entries, so an input 4x longer is refused
    after exactly the same number of fields, and it allocates no more than its own size plus
    a fixed allowance. (Limits lowered here so that the case stays small: 320 layers, 800
    blobs, 4,000 fields; their real values are checked against real nets below.)"""
    from caffe_proto.limits import Limits

    limits = Limits(layers=320)
    assert (limits.blobs, limits.fields) == (800, 4_000)
    walked = []
    for n in (10_000, 40_000):
        data = make(n)
        fields, peak = _refusal_work(data, what, limits)
        assert fields <= limits.fields + 1, (what, fields)
        assert peak < len(data) + (1 << 20), (what, peak, len(data))
        walked.append(fields)
    assert walked[0] == walked[1], f"work grows with the input ({walked}): not bounded"


def test_limits_are_far_above_real_nets():
    from caffe_proto import binary, wire
    from caffe_proto.limits import DEFAULT

    net = load_caffemodel(oracle.ORACLE / "nets" / "pspnet101_voc_slim" / "weights.caffemodel")
    assert len(net.layers) * 40 < DEFAULT.layers
    assert sum(len(l.blobs) for l in net.layers) * 40 < DEFAULT.blobs
    src = wire.Source((oracle.ORACLE / "nets" / "pspnet101_voc_slim" / "weights.caffemodel").read_bytes(), "x")
    binary._parse_net(src)
    assert src.fields * 20 < DEFAULT.fields


def test_saved_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the final file must follow the umask."""
    import os

    from caffe_proto.atomic import atomic_write

    old = os.umask(0o022)
    try:
        path = atomic_write(tmp_path / "x.bin", lambda tmp: open(tmp, "wb").write(b"1"))
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644
