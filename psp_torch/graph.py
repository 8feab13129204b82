"""Moved to `psp_torch.caffe.graph` (the Caffe side); this path re-exports it for one release.

Import `CaffeNet` from `psp_torch` or `psp_torch.caffe.graph`.
"""
from .caffe.graph import (CaffeNet, Step, WeightReport, in_test_phase,  # noqa: F401
                          module_key, read_weights, supported_types_text)
