"""Moved to `psp_torch.caffe.deploy` (the Caffe side); this path re-exports it for one release."""
from .caffe.deploy import deploy_net  # noqa: F401
