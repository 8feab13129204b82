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
from .limits import DEFAULT, MAX_COMPRESSION_RATIO, Limits, shape_count
from .net import UPSTREAM, Layer, Net
from .printable import printable
from .sniff import is_hdf5


def load_hdf5(path, *, limits: Limits = DEFAULT) -> Net:
    """Read ``data/<layer>/<index>`` datasets of a Caffe HDF5 weights file.

    Only what lies inside the file is read: external links, soft links, external storage
    and virtual datasets (which would read other files) are refused, never followed; every
    dataset's declared size is checked against `limits` before it is read.
    """
    import h5py

    path = os.fspath(path)
    size = _size(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise CaffeFormatError(f"not a readable HDF5 file: {exc}", path=path) from exc
    try:
        with f:
            walk = _Walk(path, size, limits)
            data = walk.member(f, "data", "data")
            if not isinstance(data, h5py.Group):
                raise CaffeFormatError("no 'data' group: not Caffe HDF5 weights",
                                       path=path, field="data")
            walk.collect(data, "")
    except CaffeFormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise CaffeFormatError(f"corrupt HDF5 file: {exc}", path=path) from exc
    return Net("", UPSTREAM, {}, walk.layers, path)


def _size(path: str) -> int:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CaffeFormatError(f"cannot read: {exc.strerror}", path=path) from exc
    if size == 0:
        raise CaffeFormatError("empty file (0 bytes)", path=path)
    return size


class _Walk:
    """One read of the ``data`` group: the layers found and the budgets spent so far."""

    def __init__(self, path: str, size: int, limits: Limits):
        self.path, self.size, self.limits = path, size, limits
        self.layers: list[Layer] = []
        self.groups = 0          # groups visited (hard links may repeat or loop)
        self.values = 0          # values declared by the datasets read so far

    def fail(self, message: str, field: str):
        raise CaffeFormatError(message, path=self.path, field=printable(field))

    def member(self, group, key: str, field: str):
        """``group[key]`` if it is a hard link (an object of this file); any other link
        is refused without being followed."""
        import h5py

        link = group.get(key, getlink=True)
        if link is None:
            self.fail("no 'data' group: not Caffe HDF5 weights", field)
        if isinstance(link, h5py.ExternalLink):
            self.fail(f"an external link to {printable(link.filename)}:{printable(link.path)} "
                      "(another file): refused, never followed", field)
        if isinstance(link, h5py.SoftLink):
            self.fail(f"a soft link to {printable(link.path)}: refused (Caffe writes no links)",
                      field)
        if not isinstance(link, h5py.HardLink):
            self.fail(f"a link of kind {type(link).__name__}: refused", field)
        return group[key]

    def collect(self, group, prefix: str) -> None:
        import h5py

        self.groups += 1
        problem = self.limits.layers_problem(self.groups)
        if problem:
            self.fail(problem, f"data/{prefix}")
        members = {k: self.member(group, k, f"data/{prefix}/{k}" if prefix else f"data/{k}")
                   for k in group.keys()}
        datasets = {k: v for k, v in members.items() if isinstance(v, h5py.Dataset)}
        if datasets and len(datasets) == len(members):
            self.layers.append(self.layer(prefix, datasets))
            return
        if datasets:
            self.fail("holds both datasets and groups", f"data/{prefix}")
        for key, sub in members.items():
            self.collect(sub, f"{prefix}/{key}" if prefix else key)

    def layer(self, name: str, datasets: dict) -> Layer:
        field = f"data/{name}"
        by_index = {}
        for key, ds in datasets.items():
            if not key.isdigit() or int(key) in by_index:
                self.fail(f"blob datasets must be named 0, 1, ...; found "
                          f"{printable(sorted(datasets))}", field)
            by_index[int(key)] = ds
        if sorted(by_index) != list(range(len(by_index))):
            self.fail(f"blob indices {sorted(by_index)} are not 0..{len(by_index) - 1}", field)
        blobs = []
        for i in range(len(by_index)):
            ds = by_index[i]
            self.check(ds, f"{field}/{i}")
            try:
                blobs.append(np.asarray(ds[()], dtype=np.float32).reshape(ds.shape))
            except (OSError, ValueError, TypeError) as exc:
                self.fail(f"cannot read dataset: {exc}", f"{field}/{i}")
        param = caffe_pb2.LayerParameter(name=name)
        return Layer(name, "", [], [], param, blobs)

    def check(self, ds, field: str) -> None:
        """Everything about a dataset that can be told before reading it."""
        if ds.is_virtual:
            self.fail("a virtual dataset (its data lives in other files): refused", field)
        if ds.external:
            files = ", ".join(printable(os.fsdecode(e[0])) for e in ds.external)
            self.fail(f"external storage in {files} (another file): refused, never read", field)
        if ds.dtype.kind != "f":
            self.fail(f"dataset of type {ds.dtype}, expected floats", field)
        count = shape_count(ds.shape)
        problem = self.limits.values_problem(count, f"dataset shape {ds.shape} declares")
        self.values += count
        problem = problem or self.limits.values_problem(self.values, "the file's datasets declare")
        if problem:
            self.fail(problem, field)
        nbytes = count * ds.dtype.itemsize
        stored = ds.id.get_storage_size()
        if ds.compression is None and not ds.chunks and nbytes > self.size:
            self.fail(f"dataset shape {ds.shape} is larger than the file", field)
        if nbytes and not stored:
            self.fail(f"dataset shape {ds.shape} declares {nbytes:,} bytes, the file stores "
                      "none of them (never written)", field)
        if nbytes > stored * MAX_COMPRESSION_RATIO:
            self.fail(f"dataset shape {ds.shape} declares {nbytes:,} bytes from {stored:,} "
                      f"stored: more than {MAX_COMPRESSION_RATIO}:1, beyond what compression "
                      "gives (deflate's limit is 1032:1)", field)


def load_weights(path, *, limits: Limits = DEFAULT) -> Net:
    """A caffemodel or a .caffemodel.h5, told apart by the file's first bytes."""
    from .binary import load_caffemodel

    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise CaffeFormatError(f"cannot read: {exc.strerror}", path=path) from exc
    return (load_hdf5(path, limits=limits) if is_hdf5(head)
            else load_caffemodel(path, limits=limits))
