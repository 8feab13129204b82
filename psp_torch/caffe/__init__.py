"""The Caffe side of psp_torch: everything that knows Caffe's files and layer names.

    structure.py    the PSPNet's Caffe layers (names, types, bottoms, tops, parameters, the
                    PSPNet module holding each one's weights), collected from the model's
                    blocks (each declares its layers next to its forward: psp_torch/pspnet.py)
    names.py        Caffe layer names <-> PSPNet state_dict keys (derived from structure)
    deploy.py       the deploy prototxt of a config (derived from structure)
    read_config.py  a PSPNetConfig read off a Caffe net (prototxt or caffemodel), by the
                    names the blocks declare
    weights.py      Caffe blobs <-> a PSPNet state_dict
    graph.py        CaffeNet: any Caffe net of supported layers as an nn.Module
    from_caffe.py   a PSPNet from Caffe files (psp_torch.from_caffe)

Imports go one way: this package imports the model side (psp_torch.config, .pspnet,
.metadata, .layers), never the reverse (tests/test_imports.py).
"""
from .deploy import deploy_net
from .from_caffe import pspnet_from_caffe
from .graph import CaffeNet
from .names import LayerKeys, layer_keys, state_dict_key_to_caffe
from .read_config import NotAPSPNet, config_from_net, with_aux_of
from .structure import LayerSpec, NoCaffeLayout, caffe_layers
from .weights import (WeightMismatch, caffe_blobs, load_caffe_weights, state_dict_from_caffe,
                      weights_net)

__all__ = ["CaffeNet", "LayerKeys", "LayerSpec", "NoCaffeLayout", "NotAPSPNet", "WeightMismatch",
           "caffe_blobs", "caffe_layers", "config_from_net", "deploy_net",
           "layer_keys", "load_caffe_weights", "pspnet_from_caffe", "state_dict_from_caffe",
           "state_dict_key_to_caffe", "weights_net", "with_aux_of"]
