"""Caffe file formats without Caffe: prototxt text, binary caffemodel, HDF5 weights.

Knows nothing of torch. Every reader returns a `Net` and raises
`CaffeFormatError` (a ValueError) on bad input.
"""
from .binary import load_caffemodel, parse_caffemodel
from .errors import CaffeFormatError
from .hdf5 import load_hdf5, load_weights
from .net import PSPNET, UPSTREAM, Layer, Net
from .prototxt import load_prototxt, parse_prototxt
from .writer import net_to_prototxt, save_caffemodel

__all__ = ["load_prototxt", "parse_prototxt", "load_caffemodel", "parse_caffemodel", "load_hdf5", "load_weights",
           "save_caffemodel", "net_to_prototxt", "CaffeFormatError", "Net", "Layer",
           "PSPNET", "UPSTREAM"]
