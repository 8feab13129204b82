"""`PSPNet.from_caffe`: a ready PSPNet from a deploy prototxt and Caffe weights.

The model side (`psp_torch.pspnet`) never imports the Caffe side, so this module
attaches the classmethod to `PSPNet` itself (`attach`, run when `psp_torch.caffe` is
imported, which ``import psp_torch`` always does): ``PSPNet.from_caffe(...)`` keeps
working everywhere, and `pspnet_from_caffe` is the same function for callers who want
to name the Caffe side explicitly.
"""
from __future__ import annotations

from caffe_proto import load_prototxt

from ..metadata import config_meta, source_meta
from ..pspnet import PSPNet
from .read_config import aux_width_of, config_from_net
from .weights import load_caffe_weights, weights_net


def pspnet_from_caffe(prototxt, weights=None, meta: dict | None = None, *,
                      cls: type = PSPNet) -> PSPNet:
    """Config from a deploy prototxt (path or text); weights (caffemodel/.h5/Net) by layer
    name. In eval mode, with the same ``meta`` as `psp_torch.load` gives a converted file
    (the release's metadata where the config matches one; source and its sha256 when the
    weights are a file), unless `meta` is given. A weights file with the aux head
    (conv4_24, conv6_1) gives a model with one."""
    config = config_from_net(load_prototxt(prototxt))
    if meta is None:
        meta = {**config_meta(config), **source_meta(weights), "config_from": "prototxt"}
    if weights is None:
        return cls(config, meta).eval()
    wnet = weights_net(weights)
    aux = aux_width_of(wnet)
    if aux and not config.aux:
        config = config.with_aux(aux)
    model = cls(config, meta)
    load_caffe_weights(model, wnet)
    return model.eval()


def _from_caffe(cls, prototxt, weights=None, meta: dict | None = None):
    return pspnet_from_caffe(prototxt, weights, meta, cls=cls)


_from_caffe.__doc__ = pspnet_from_caffe.__doc__ + "\n\n    (Attached by psp_torch.caffe.from_caffe.)"
_from_caffe.__name__ = _from_caffe.__qualname__ = "from_caffe"


def attach() -> None:
    """Give `PSPNet` its ``from_caffe`` classmethod (idempotent)."""
    PSPNet.from_caffe = classmethod(_from_caffe)


attach()
