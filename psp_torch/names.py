"""Moved to `psp_torch.caffe.names` (the Caffe side); this path re-exports it for one release."""
from .caffe.names import (BN, CONV, CONV_BIAS, LayerKeys,  # noqa: F401
                          caffe_to_state_dict_keys, layer_keys, state_dict_key_to_caffe)
