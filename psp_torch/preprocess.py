"""RGB uint8 image -> the network input, exactly as the authors' MATLAB code builds it.

The original `caffe_process.m` subtracts the RGB mean (123.68, 116.779, 103.939)
from the float image (no scaling to [0, 1], no std division) and feeds the
channels to Caffe in BGR order. `preprocess` does the same and returns a
(1, 3, H, W) float32 tensor whose channels are B, G, R:

    x[0, 0] = B - 103.939,  x[0, 1] = G - 116.779,  x[0, 2] = R - 123.68
"""
from __future__ import annotations

import numpy as np
import torch

from .presets import MEAN_RGB


def preprocess(image_rgb_uint8, mean=MEAN_RGB) -> torch.Tensor:
    """(H, W, 3) RGB uint8 image (numpy or tensor) -> (1, 3, H, W) network input.

    A grey (H, W) image is replicated to 3 channels (as the MATLAB code does); the
    alpha channel of an (H, W, 4) RGBA image is dropped.

    Float32, ``pixel - mean`` per channel (mean given in RGB order), channels in BGR order.
    """
    img = image_rgb_uint8
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu().numpy()
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ValueError(f"preprocess expects a uint8 RGB image, got dtype {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f"preprocess expects an (H, W, 3) RGB image, got shape {img.shape}")
    rgb = img[:, :, :3].astype(np.float32) - np.asarray(mean, dtype=np.float32)
    bgr = rgb[:, :, ::-1].transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(bgr))[None]
