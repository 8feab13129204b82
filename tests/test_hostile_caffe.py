"""Crafted Caffe files (prototxt, caffemodel, .caffemodel.h5) that a stranger could hand over.

Each is made by a small function below (the corpus), then fed to the real command line under
an address-space limit (`tests/hostile.py`): it is refused with one line naming the file and
what in it is wrong, exit status 1, no traceback and no output file. The genuine tiny net
they are variations of converts (so every refusal is about the crafted part). Limits and the
options that raise them: `caffe_proto/limits.py`, README "Untrusted files".
"""
from __future__ import annotations

import itertools
import sys

import h5py
import numpy as np
import pytest

import hostile
from caffe_corpus import TINY, ld, tiny_weights, varint, write_h5
from caffe_proto import CaffeFormatError, load_hdf5, parse_prototxt
from caffe_proto.limits import DEFAULT, Limits

CONVERT = "converter/convert.py"
INSPECT = ["-m", "caffe_proto.inspect"]

SECRET = b"root:x:0:0:SECRET-BYTES-24"[:24]      # 6 float32 values' worth of another file


def convert(tmp_path, weights, prototxt_text=TINY, *options):
    proto = tmp_path / "net.prototxt"
    proto.write_text(prototxt_text)
    out = tmp_path / "out.pth"
    r = hostile.run([CONVERT, weights, "--prototxt", proto, "-o", out, *options], cwd=tmp_path)
    return r, out


def refused(r, out, *mentions):
    line = hostile.assert_one_line(r, *mentions)
    assert not out.exists(), "an output was written for a refused input"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(out.name)], "partial file"
    return line


def test_the_genuine_tiny_net_converts(tmp_path):
    w = write_h5(tmp_path / "w.h5", tiny_weights)
    r, out = convert(tmp_path, w)
    assert r.returncode == 0, r.stderr
    assert out.exists() and "blobs copied: 2 (6 values)" in r.stdout


# ------------------------------------------------ case 1: HDF5 that reads other files

def _external_storage(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)

    def build(f):
        f.create_dataset("data/ip/0", shape=(2, 2), dtype="<f4",
                         external=[(str(secret), 0, 16)])
        f.create_dataset("data/ip/1", shape=(2,), dtype="<f4",
                         external=[(str(secret), 16, 8)])
    return build


def _external_link(tmp_path):
    other = write_h5(tmp_path / "other.h5", tiny_weights)

    def build(f):
        f["data/ip"] = h5py.ExternalLink(other, "/data/ip")
    return build


def _soft_link(tmp_path):
    def build(f):
        tiny_weights(f.create_group("elsewhere"))
        f["data/ip"] = h5py.SoftLink("/elsewhere/data/ip")
    return build


def _virtual(tmp_path):
    other = write_h5(tmp_path / "other.h5", lambda f: f.create_dataset(
        "x", data=np.frombuffer(SECRET, np.float32)))

    def build(f):
        for i, (start, n) in enumerate(((0, 4), (4, 2))):
            layout = h5py.VirtualLayout(shape=(n,), dtype="<f4")
            layout[:] = h5py.VirtualSource(other, "x", shape=(6,))[start:start + n]
            f.create_virtual_dataset(f"data/ip/{i}", layout)
    return build


@pytest.mark.parametrize("make, field, says", [
    (_external_storage, "data/ip/0", "external storage"),
    (_external_link, "data/ip", "external link"),
    (_soft_link, "data/ip", "soft link"),
    (_virtual, "data/ip/0", "virtual dataset"),
], ids=["external-storage", "external-link", "soft-link", "virtual-dataset"])
def test_hdf5_reading_another_file_is_refused(tmp_path, make, field, says):
    w = write_h5(tmp_path / "w.h5", make(tmp_path))
    r, out = convert(tmp_path, w)
    refused(r, out, "w.h5", field, says)
    assert "SECRET" not in r.stdout + r.stderr


# ------------------------------------------------ case 2: declared sizes of HDF5 datasets

def test_compressed_dataset_declaring_gigabytes_is_refused_before_reading(tmp_path):
    def build(f):                     # 2^32 float32 values declared (16 GiB), never written
        f.create_dataset("data/ip/0", shape=(1 << 16, 1 << 16), dtype="<f4",
                         chunks=(256, 256), compression="gzip")
        f["data/ip/1"] = np.zeros(2, np.float32)
    w = write_h5(tmp_path / "w.h5", build)
    assert (tmp_path / "w.h5").stat().st_size < 16_000
    r, out = convert(tmp_path, w)
    refused(r, out, "w.h5", "data/ip/0", "4,294,967,296", "--max-values")


def test_dataset_never_written_is_refused(tmp_path):
    def build(f):                     # within every budget, but no stored data at all
        f.create_dataset("data/ip/0", shape=(2, 2), dtype="<f4", chunks=(2, 2),
                         compression="gzip")
        f["data/ip/1"] = np.zeros(2, np.float32)
    w = write_h5(tmp_path / "w.h5", build)
    r, out = convert(tmp_path, w)
    refused(r, out, "w.h5", "data/ip/0", "never written")


def test_declared_size_beyond_any_compression_is_refused(tmp_path):
    """One chunk of zeros written, 255 left to the fill value: 64 MiB from ~100 bytes."""
    path = tmp_path / "w.h5"

    def build(f):
        d = f.create_dataset("data/ip/0", shape=(1 << 24,), dtype="<f4", chunks=(1 << 16,),
                             compression="gzip")
        d[:1 << 16] = 0
    write_h5(path, build)
    with pytest.raises(CaffeFormatError, match=r"w\.h5, data/ip/0: .*beyond what compression"):
        load_hdf5(path)


def test_genuinely_compressed_zeros_are_read(tmp_path):
    """Deflate's best ratio (zeros) stays inside the bound: the check refuses no real file."""
    path = tmp_path / "w.h5"
    write_h5(path, lambda f: f.create_dataset("data/ip/0", data=np.zeros(1 << 22, np.float32),
                                              chunks=(1 << 20,), compression="gzip",
                                              compression_opts=9))
    assert load_hdf5(path).layers[0].blobs[0].shape == (1 << 22,)


def test_hard_link_loops_are_bounded(tmp_path):
    path = tmp_path / "w.h5"

    def build(f):
        g = f.create_group("data/a")
        g["x"] = g                    # a group holding itself, twice: 2^depth paths
        g["y"] = g
    write_h5(path, build)
    with pytest.raises(CaffeFormatError, match="more than 20 layers"):
        load_hdf5(path, limits=Limits(layers=20))


# ------------------------------------------------ case 3: sizes declared by a prototxt / caffemodel

def test_num_output_asking_for_gigabytes_is_refused_before_building(tmp_path):
    """208 bytes that ask for 10.8 GB: 1e8 x 3 x 3 x 3 convolution weights."""
    text = ('input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n'
            'layer { name: "conv" type: "Convolution" bottom: "data" top: "c"\n'
            '        convolution_param { num_output: 100000000 kernel_size: 3 } }\n')
    w = write_h5(tmp_path / "w.h5", lambda f: f.create_dataset("data/conv/0",
                                                               data=np.zeros(1, np.float32)))
    r, out = convert(tmp_path, w, text)
    refused(r, out, "net.prototxt", "'conv' (Convolution)", "2,800,000,000", "--max-values")


def test_input_dims_asking_for_gigabytes_are_refused(tmp_path):
    text = TINY.replace("input_dim: 1\ninput_dim: 1\nlayer", "input_dim: 100000\n"
                        "input_dim: 100000\nlayer")
    w = write_h5(tmp_path / "w.h5", tiny_weights)
    r, out = convert(tmp_path, w, text)
    refused(r, out, "net.prototxt", "input_dim", "20,000,000,000")


def test_caffemodel_blob_shape_above_the_budget_is_refused(tmp_path):
    shape = ld(7, ld(1, varint(1 << 20) + varint(1 << 20)))          # BlobShape dims, packed
    blob = shape + ld(5, np.zeros(1, "<f4").tobytes())
    layer = ld(1, b"big") + ld(2, b"InnerProduct") + ld(7, blob)
    path = tmp_path / "w.caffemodel"
    path.write_bytes(ld(100, layer))
    r = hostile.run([*INSPECT, path], cwd=tmp_path)
    hostile.assert_one_line(r, "w.caffemodel", "layer[0].blobs[0]", "1,099,511,627,776",
                            "--max-values")


def test_the_options_move_the_limits(tmp_path):
    """--max-values and --max-layers reach the readers and CaffeNet: the genuine net is
    refused below its own sizes (6 weight values; 31 layers) and read at the default."""
    w = write_h5(tmp_path / "w.h5", tiny_weights)
    r, out = convert(tmp_path, w, TINY, "--max-values", "5")
    refused(r, out, "w.h5", "6 values", "--max-values")
    chain = TINY + "".join(f'layer {{ name: "r{i}" type: "ReLU" bottom: "out" top: "out" }}\n'
                           for i in range(30))
    (tmp_path / "chain.prototxt").write_text(chain)
    r = hostile.run([*INSPECT, "chain.prototxt", "--max-layers", "20"], cwd=tmp_path)
    hostile.assert_one_line(r, "chain.prototxt", "more than 20 layers", "--max-layers")
    r = hostile.run([*INSPECT, "chain.prototxt"], cwd=tmp_path)
    assert r.returncode == 0 and "31 layers" in r.stdout, r.stderr


def test_caffenet_checks_layer_count_parameters_and_blobs():
    from psp_torch.caffe.graph import CaffeNet
    from psp_torch.layers import LayerError

    net = parse_prototxt(TINY)
    two = parse_prototxt(TINY + 'layer { name: "r" type: "ReLU" bottom: "out" top: "out" }')
    with pytest.raises(LayerError, match="more than 1 layers"):
        CaffeNet(two, limits=Limits(layers=1))
    with pytest.raises(LayerError, match=r"'ip' \(InnerProduct\): its parameters have 6 values"):
        CaffeNet(net, limits=Limits(values=5))
    wide = parse_prototxt(TINY.replace("num_output: 2", "num_output: 1"))
    with pytest.raises(LayerError, match=r"input 'data': shape \(1, 2, 1, 1\) has 2 values"):
        CaffeNet(wide, limits=Limits(values=1))
    CaffeNet(net)                                    # the defaults: far above it


def test_the_default_budget_is_far_above_the_released_models():
    from caffe_proto.limits import FACTOR, LARGEST_RELEASED

    assert LARGEST_RELEASED == 68_185_066 and DEFAULT.values == LARGEST_RELEASED * FACTOR
    assert DEFAULT.layers >= 40 * 400                # the released nets have under 400


# ------------------------------------------------ case 4: building is linear in the layers

def _relu_chain(names) -> object:
    text = 'input: "data"\ninput_dim: 1\ninput_dim: 1\ninput_dim: 2\ninput_dim: 2\n'
    text += "".join(f'layer {{ name: "{n}" type: "ReLU" bottom: "data" top: "data" }}\n'
                    for n in names)
    return parse_prototxt(text)


def _python_steps_to_build(net) -> int:
    """Python trace events (calls and lines) while CaffeNet builds `net`: work, counted."""
    from psp_torch.caffe.graph import CaffeNet

    events = 0

    def trace(frame, event, arg):
        nonlocal events
        events += 1
        return trace
    sys.settrace(trace)
    try:
        CaffeNet(net)
    finally:
        sys.settrace(None)
    return events


@pytest.mark.parametrize("kind", ["distinct", "colliding"])
def test_building_is_linear_in_the_layer_count(kind):
    """4x the layers costs 4x the steps (quadratic building: 5.3x and 7.5x here). The
    colliding names all clean to one module key base (a/////, a////-, ...), the worst case
    of the key suffixes."""
    if kind == "distinct":
        names = [f"relu{i}" for i in range(400)]
    else:
        names = ["a" + "".join(p) for p in itertools.product("/-.,:", repeat=4)][:400]
    _python_steps_to_build(_relu_chain(names[:10]))          # warm: first-call imports, caches
    small = _python_steps_to_build(_relu_chain(names[:100]))
    large = _python_steps_to_build(_relu_chain(names))
    assert large / small < 4.3, (small, large, large / small)


def test_module_keys_probe_each_key_once():
    from psp_torch.caffe.graph import ModuleKeys

    keys = ModuleKeys()
    names = ["a" + "".join(p) for p in itertools.product("/-.", repeat=6)]   # 729, one base
    got = [keys.key(n) for n in names]
    assert got[:3] == ["a______", "a_______2", "a_______3"] and len(set(got)) == len(got)
    assert keys.probes == len(names)


# ------------------------------------------------ case 5: names from files reach the terminal escaped

def test_inspect_escapes_and_shortens_names(tmp_path):
    long_name = "L" * 100_000
    text = TINY.replace('name: "ip"', 'name: "\\033[2Jclear"') + (
        f'layer {{ name: "{long_name}" type: "ReLU" bottom: "out" top: "out" }}\n')
    (tmp_path / "n.prototxt").write_text(text)
    r = hostile.run([*INSPECT, "n.prototxt"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\\x1b[2Jclear" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) < 1000
    assert "(99,800 more characters)" in r.stdout


def test_convert_report_escapes_names(tmp_path):
    def build(f):
        tiny_weights(f)
        f["data/\x1b]0;owned\x07/0"] = np.zeros(3, np.float32)     # ignored: not in the net
    w = write_h5(tmp_path / "w.h5", build)
    r, out = convert(tmp_path, w)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout + r.stderr and "\x07" not in r.stdout + r.stderr
    assert "\\x1b]0;owned\\x07 (): not in the prototxt" in r.stdout


def test_reader_errors_escape_what_they_quote(tmp_path):
    path = tmp_path / "w.h5"
    write_h5(path, lambda f: f.__setitem__("data/\x1b[2J", h5py.ExternalLink("x.h5", "/y")))
    with pytest.raises(CaffeFormatError) as info:
        load_hdf5(path)
    assert "\x1b" not in str(info.value) and "data/\\x1b[2J" in str(info.value)
    with pytest.raises(CaffeFormatError) as info:
        parse_prototxt('layer { name: "\x1b[2J" type: 7 }')
    assert "\x1b" not in str(info.value)


def test_module_keys_are_the_stable_mapping():
    """The linear keys are the documented ones: the base, else the smallest free _2, _3, ...
    (checked against that rule, probed from 2 for every name, on names that collide a lot)."""
    import random
    import re

    from psp_torch.caffe.graph import ModuleKeys

    rng = random.Random(0)
    names = list(dict.fromkeys("".join(rng.choice("a/_2-") for _ in range(rng.randint(1, 4)))
                               for _ in range(2000)))
    keys, taken = ModuleKeys(), set()
    for name in names:
        base = re.sub(r"[^0-9A-Za-z_]", "_", name) or "_"
        want, n = base, 2
        while want in taken:
            want, n = f"{base}_{n}", n + 1
        taken.add(want)
        assert keys.key(name) == want, name
