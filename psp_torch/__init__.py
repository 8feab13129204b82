"""Caffe's arithmetic in PyTorch: layer modules, CaffeNet (any prototxt), the clean PSPNet.

psp_torch reads files only through caffe_proto. Entry points: `load` (a converted .pth),
`PSPNet` and its factories, `from_caffe` (a PSPNet from Caffe files), `CaffeNet.from_files`,
`preprocess`.
"""
# --- clean model, preprocessing, .pth loading (pspnet / io / preprocess) ---
from .config import PSPNetConfig  # noqa: E402
from .io import load  # noqa: E402
from .preprocess import preprocess  # noqa: E402
from .pspnet import PSPNet, pspnet50_ade20k, pspnet101_cityscapes, pspnet101_voc2012  # noqa: E402

# --- the Caffe side (psp_torch/caffe/): CaffeNet (any prototxt), a PSPNet from Caffe files ---
from .caffe import CaffeNet  # noqa: E402
from .caffe import pspnet_from_caffe as from_caffe  # noqa: E402
