"""Caffe file formats without Caffe: prototxt text, binary caffemodel, HDF5 weights.

Knows nothing of torch. Every reader returns a `Net` and raises
`CaffeFormatError` (a ValueError) on bad input.
"""
from .binary import load_caffemodel
from .errors import CaffeFormatError
from .net import PSPNET, UPSTREAM, Layer, Net
from .prototxt import load_prototxt

__all__ = ["load_prototxt", "load_caffemodel", "CaffeFormatError", "Net", "Layer",
           "PSPNET", "UPSTREAM"]
