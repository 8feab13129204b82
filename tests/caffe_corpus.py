"""Small Caffe files for hostile-input tests, made by functions (no binary fixtures).

`TINY` is a genuine net (one InnerProduct over a 1x2x1x1 input: weights 2x2, bias 2) and
`tiny_weights` its HDF5 weights; `tests/test_hostile_caffe.py` varies them into crafted
files, `tests/test_fuzz_cli.py` mutates them.
"""
from __future__ import annotations

import h5py
import numpy as np

TINY = '''name: "tiny"
input: "data"
input_dim: 1
input_dim: 2
input_dim: 1
input_dim: 1
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "out"
        inner_product_param { num_output: 2 } }
'''


def tiny_weights(f) -> None:
    """`TINY`'s weights into an open HDF5 file (or group), Caffe's layout data/<layer>/<i>."""
    f["data/ip/0"] = np.arange(4, dtype=np.float32).reshape(2, 2)
    f["data/ip/1"] = np.zeros(2, np.float32)


def write_h5(path, build) -> str:
    with h5py.File(path, "w") as f:
        build(f)
    return str(path)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload
