"""`pspnet_from_caffe` (``psp_torch.from_caffe``): a ready PSPNet from a deploy prototxt and
Caffe weights. It lives on the Caffe side: the model (`psp_torch.pspnet`) never imports it.
"""
from __future__ import annotations

from caffe_proto import load_prototxt

from ..metadata import config_meta, source_meta
from ..pspnet import PSPNet
from .read_config import config_from_net, with_aux_of
from .weights import load_caffe_weights, weights_net


def pspnet_from_caffe(prototxt, weights=None, meta: dict | None = None, *,
                      cls: type = PSPNet) -> PSPNet:
    """Config from a deploy prototxt (path or text); weights (caffemodel/.h5/Net) by layer
    name. In eval mode, with the same ``meta`` as `psp_torch.load` gives a converted file
    (the release's metadata where the config matches one; source and its sha256 when the
    weights are a file), unless `meta` is given. A weights file with the aux head
    (conv4_24, conv6_1) gives a model with one (`with_aux_of`)."""
    config = config_from_net(load_prototxt(prototxt))
    if meta is None:
        meta = {**config_meta(config), **source_meta(weights), "config_from": "prototxt"}
    if weights is None:
        return cls(config, meta).eval()
    wnet = weights_net(weights)
    if not config.aux:
        config = with_aux_of(config, wnet)
    model = cls(config, meta)
    load_caffe_weights(model, wnet)
    return model.eval()
