"""Caffe HDF5 weights (``.caffemodel.h5``) -> `Net`, and picking a weights reader.

Caffe's Net::ToHDF5 writes one group per layer with learnable blobs,
``data/<layer name>/<blob index>``, each a float dataset in the blob's shape.
The file holds no types, bottoms, tops or parameters: its layers get type ""
and an empty parameter message (only the name set); the net's dialect is
unknown and reported as upstream. HDF5 keeps groups in name order, not in
the net's order. A layer name with ``/`` becomes nested groups (Caffe itself
cannot write those); they are read back as the joined path.
"""
from __future__ import annotations

import os

import numpy as np

from . import caffe_pb2
from .errors import CaffeFormatError
from .net import UPSTREAM, Layer, Net
from .sniff import is_hdf5


def load_hdf5(path) -> Net:
    """Read ``data/<layer>/<index>`` datasets of a Caffe HDF5 weights file."""
    import h5py

    path = os.fspath(path)
    size = _size(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CaffeFormatError(f"not a readable HDF5 file: {exc}", path=path) from exc
    try:
        with f:
            if "data" not in f or not isinstance(f["data"], h5py.Group):
                raise CaffeFormatError("no 'data' group: not Caffe HDF5 weights",
                                       path=path, field="data")
            layers = []
            _collect(f["data"], "", layers, path, size)
    except CaffeFormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CaffeFormatError(f"corrupt HDF5 file: {exc}", path=path) from exc
    return Net("", UPSTREAM, {}, layers, path)


def _size(path: str) -> int:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CaffeFormatError(f"cannot read: {exc.strerror}", path=path) from exc
    if size == 0:
        raise CaffeFormatError("empty file (0 bytes)", path=path)
    return size


def _collect(group, prefix: str, layers: list, path: str, size: int) -> None:
    import h5py

    members = list(group.keys())
    datasets = {k: group[k] for k in members if isinstance(group[k], h5py.Dataset)}
    if datasets and len(datasets) == len(members):
        layers.append(_layer(prefix, datasets, path, size))
        return
    if datasets:
        raise CaffeFormatError("holds both datasets and groups", path=path,
                               field=f"data/{prefix}")
    for key in members:
        _collect(group[key], f"{prefix}/{key}" if prefix else key, layers, path, size)


def _layer(name: str, datasets: dict, path: str, size: int) -> Layer:
    field = f"data/{name}"
    by_index = {}
    for key, ds in datasets.items():
        if not key.isdigit() or int(key) in by_index:
            raise CaffeFormatError(f"blob datasets must be named 0, 1, ...; found "
                                   f"{sorted(datasets)}", path=path, field=field)
        by_index[int(key)] = ds
    if sorted(by_index) != list(range(len(by_index))):
        raise CaffeFormatError(f"blob indices {sorted(by_index)} are not 0..{len(by_index) - 1}",
                               path=path, field=field)
    blobs = []
    for i in range(len(by_index)):
        ds = by_index[i]
        if ds.dtype.kind != "f":
            raise CaffeFormatError(f"dataset of type {ds.dtype}, expected floats",
                                   path=path, field=f"{field}/{i}")
        nbytes = int(np.prod(ds.shape, dtype=np.int64)) * ds.dtype.itemsize
        if ds.compression is None and nbytes > size:
            raise CaffeFormatError(f"dataset shape {ds.shape} is larger than the file",
                                   path=path, field=f"{field}/{i}")
        try:
            blobs.append(np.asarray(ds[()], dtype=np.float32).reshape(ds.shape))
        except (OSError, ValueError, TypeError) as exc:
            raise CaffeFormatError(f"cannot read dataset: {exc}", path=path,
                                   field=f"{field}/{i}") from exc
    param = caffe_pb2.LayerParameter(name=name)
    return Layer(name, "", [], [], param, blobs)


def load_weights(path) -> Net:
    """A caffemodel or a .caffemodel.h5, told apart by the file's first bytes."""
    from .binary import load_caffemodel

    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise CaffeFormatError(f"cannot read: {exc.strerror}", path=path) from exc
    return load_hdf5(path) if is_hdf5(head) else load_caffemodel(path)
