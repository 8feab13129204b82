"""Caffe's arithmetic in PyTorch: layer modules, CaffeNet (any prototxt), the clean PSPNet.

psp_torch reads files only through caffe_proto. Entry points: `load` (a converted .pth),
`PSPNet` and its factories, `CaffeNet.from_files`, `preprocess`.
"""
# --- clean model, preprocessing, .pth loading (pspnet / io / preprocess) ---
from .config import PSPNetConfig  # noqa: E402
from .io import load  # noqa: E402
from .preprocess import preprocess  # noqa: E402
from .pspnet import PSPNet, pspnet50_ade20k, pspnet101_cityscapes, pspnet101_voc2012  # noqa: E402

# --- the Caffe side (psp_torch/caffe/): CaffeNet, names, deploy, weights; it also gives
# PSPNet its from_caffe classmethod (psp_torch/caffe/from_caffe.py) ---
from .caffe import CaffeNet  # noqa: E402
