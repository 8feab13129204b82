"""Caffe layers as torch modules: one module per layer family, arithmetic in docstrings.

``LAYER_TYPES`` maps each supported Caffe ``type`` string to its module class;
``ALIASES`` maps the type names of the released PSPNet caffemodels to them.
Every class has ``from_layer(layer, bottom_shapes)``, ``output_shapes`` and a
forward over its bottoms (TEST phase).
"""
from .activation import Dropout, Power, PReLU, ReLU, Sigmoid, TanH
from .base import CaffeLayer, LayerError
from .batchnorm import BatchNorm, Bias, Scale
from .bn import BN
from .concat import Concat, Slice, Split
from .conv import Convolution, Deconvolution, conv_output_size, deconv_output_size
from .crop import Crop
from .eltwise import Eltwise
from .inner_product import InnerProduct
from .input import Input
from .interp import Interp, interp_output_size   # the function interp: layers.interp.interp
from .pooling import Pooling, pool2d, pool_output_size
from .reshape import Flatten, Reshape
from .softmax import Softmax

LAYER_TYPES = {cls.__name__: cls for cls in (
    BN, BatchNorm, Scale, Bias, Interp, Pooling, Convolution, Deconvolution, InnerProduct,
    Eltwise, Concat, Slice, Split, Flatten, Reshape, Crop, ReLU, PReLU, Sigmoid, TanH,
    Power, Softmax, Dropout, Input)}

# Type strings of the released caffemodels (weights are matched by layer name,
# so these only matter when a net is built from such a file directly).
ALIASES = {"BNData": "BN", "ConvolutionData": "Convolution",
           "HoleConvolutionData": "Convolution"}


def layer_class(type_name: str):
    """The module class of a Caffe type string (aliases resolved), or None."""
    return LAYER_TYPES.get(ALIASES.get(type_name, type_name))


__all__ = ["LAYER_TYPES", "ALIASES", "layer_class", "CaffeLayer", "LayerError", *LAYER_TYPES,
           "interp_output_size", "pool2d", "pool_output_size", "conv_output_size",
           "deconv_output_size"]
