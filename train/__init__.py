"""The paper's training (deep supervision, section 4) and its recipe (section 5.1), with the
release's conventions: one pure function (or small class) per step, `run.py` the CLI.
Installed as ``pspnet_caffe.train``."""
