"""The PSPNetConfig variants every deploy path must handle (ONNX, Caffe and back).

One list for every test that checks a path against the float64 forward: a new
config field that the training CLI can set gets its variant here, and every
path's test then covers it. Widths are the oracle's slim PSPNet50 (every width
/ 16) so that each variant runs in well under a second.
"""
from __future__ import annotations

from psp_torch.config import PSPNetConfig
from psp_torch.pspnet import PSPNet
from pspnet_caffe.converter.synthetic import random_pspnet

SLIM = dict(num_classes=150, blocks=(3, 4, 6, 3), stem_widths=(4, 4, 8),
            mid_widths=(4, 8, 16, 32), out_widths=(16, 32, 64, 128), ppm_width=32,
            head_width=32, crop_size=65, stride_on_reduce=True)

# name -> the fields that differ from SLIM (what train/run.py's flags can build)
VARIANTS = {
    "release": {},                                        # AVE pyramid 1/2/3/6 with reduction
    "aux": {"aux_width": 16},                             # deep supervision head kept
    "max_pool": {"pool": "max"},                          # --pool max
    "no_reduction": {"reduction": False},                 # --no-reduction
    "max_no_reduction_aux": {"pool": "max", "reduction": False, "aux_width": 16},
    "bin1": {"bins": (1,)},                               # --bins 1
    "no_pyramid": {"bins": ()},                           # --bins none (dilated FCN)
    "no_pyramid_aux": {"bins": (), "aux_width": 16},
    "aux_on_stage3": {"aux_width": 16, "aux_after": "conv3"},  # the aux head moved: a config value
    "stride_on_3x3_depth101": {"blocks": (3, 4, 23, 3), "stride_on_reduce": False},
}

# two input sizes: the crop (8k+1, Caffe's zoom_factor 8 holds) and one that is not square
SIZES = ((65, 65), (57, 81))


def variant_config(name: str) -> PSPNetConfig:
    return PSPNetConfig(**{**SLIM, **VARIANTS[name]})


def calibrated_model(name: str = "release") -> PSPNet:
    """The variant in eval mode, random weights (seed 0) and BN statistics that do not cancel
    out (a BN with mean 0 and variance 1 would hide a wrong statistic): converter/synthetic.py's
    `random_pspnet` with BN mean and variance drawn, scale and shift left at 1 and 0."""
    return random_pspnet(variant_config(name), seed=0, bn="statistics")
