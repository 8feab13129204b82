"""Moved to `psp_torch.caffe.weights` (the Caffe side); this path re-exports it for one release."""
from .caffe.weights import (BN_TYPES, CONV_TYPES, TRAINING_TYPES,  # noqa: F401
                            WeightMismatch, WeightReport, caffe_blobs, expected_shapes,
                            load_caffe_weights, state_dict_from_caffe, weights_net)
