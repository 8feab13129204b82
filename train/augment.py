"""Training augmentation: pure functions of (image, label, rng) on numpy arrays.

The image is float32 RGB (H, W, 3) in 0..255 (not yet mean-subtracted), the label uint8
(H, W) of class ids, 255 = ignored. Every random draw comes from the ``numpy.random.Generator``
passed in; `sample_rng` derives it from (seed, position of the sample in the training
stream), so a sample's augmentation depends on nothing else (not on workers, ranks or resume).

The paper's recipe (section 5.1, with the probabilities of the authors' PyTorch code, semseg
util/transform.py), in this order; the ranges and the kernel are the dataset's `TrainRecipe`
(``scale_range``, ``rotate_range``, ``blur_kernel``; psp_torch.datasets: the paper's
U(0.5, 2.0), U(-10, 10) degrees, 5x5):

1. `random_scale`: s ~ U(scale_range); size ``round(side * s)``; image bilinear, label nearest.
2. `random_rotate`: with p = 0.5, angle ~ U(rotate_range) degrees about the centre
   ``(w/2, h/2)``; image bilinear with border = the mean colour, label nearest with border 255.
3. `random_blur`: with p = 0.5, Gaussian blur k x k (sigma from the size, OpenCV's rule) on
   the image only.
4. `random_mirror`: with p = 0.5, left-right flip of both.
5. `pad_to_crop`: a side shorter than the crop is padded to it, image with the mean colour, label
   with 255 (split evenly top/bottom, left/right; ``caffe``: bottom/right only).
6. `random_crop`: a crop x crop window at a uniform random offset.

``caffe`` (the release's data layer): a scale drawn from a list, pad bottom/right, random crop,
mirror. ``none``: pad bottom/right and the centre crop, nothing random.

cv2.resize / warpAffine take at most 4 channels per call: images here have 3.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from psp_torch.datasets.base import (BLUR_KERNEL, IGNORE, ROTATE_RANGE, SCALE_RANGE,
                                     TrainRecipe)
from psp_torch.presets import MEAN_RGB

MODES = ("paper", "caffe", "none")
CAFFE_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


@dataclass(frozen=True)
class Augment:
    """Which steps run, and their parameters."""
    crop_size: int
    mean_rgb: tuple = MEAN_RGB
    scale_range: tuple | None = SCALE_RANGE     # U(lo, hi); None = off
    scale_list: tuple | None = None             # one of these (caffe); None = off
    rotate_range: tuple | None = ROTATE_RANGE   # U(lo, hi) degrees; None = off
    rotate_p: float = 0.5
    blur: bool = True
    blur_p: float = 0.5
    blur_kernel: int = BLUR_KERNEL
    mirror: bool = True
    pad: str = "center"                         # "center" | "bottom_right"
    crop: str = "random"                        # "random" | "center"

    @property
    def rotate(self) -> float:
        """The largest |angle| drawn, in degrees (0 = no rotation)."""
        return max(abs(a) for a in self.rotate_range) if self.rotate_range else 0.0


def recipe(mode: str, crop_size: int, *, rotate: bool = True, blur: bool = True,
           mean_rgb=MEAN_RGB, train: TrainRecipe | None = None) -> Augment:
    """The `Augment` of ``--augment MODE``; ``rotate``/``blur`` say whether the dataset's recipe
    uses them, ``train`` (the dataset's `TrainRecipe`; default: the paper's ranges) gives the
    scale and rotation ranges and the blur kernel (paper mode only)."""
    mean = tuple(float(m) for m in mean_rgb)
    if mode == "paper":
        ranges = {"scale_range": SCALE_RANGE, "rotate_range": ROTATE_RANGE,
                  "blur_kernel": BLUR_KERNEL} if train is None else {
            "scale_range": tuple(train.scale_range), "rotate_range": tuple(train.rotate_range),
            "blur_kernel": int(train.blur_kernel)}
        if not rotate:
            ranges["rotate_range"] = None
        return Augment(crop_size, mean, blur=blur, **ranges)
    if mode == "caffe":
        return Augment(crop_size, mean, scale_range=None, scale_list=CAFFE_SCALES,
                       rotate_range=None, blur=False, pad="bottom_right")
    if mode == "none":
        return Augment(crop_size, mean, scale_range=None, rotate_range=None, blur=False,
                       mirror=False, pad="bottom_right", crop="center")
    raise ValueError(f"unknown augmentation {mode!r}; expected one of {MODES}")


def sample_rng(seed: int, position: int) -> np.random.Generator:
    """The generator of the sample at ``position`` of the training stream."""
    return np.random.default_rng([int(seed), 1, int(position)])


# ---------------------------------------------------------------- steps

def resize_pair(image, label, rows: int, cols: int):
    """Image bilinear, label nearest (label values are never interpolated)."""
    return (cv2.resize(image, (cols, rows), interpolation=cv2.INTER_LINEAR),
            cv2.resize(label, (cols, rows), interpolation=cv2.INTER_NEAREST))


def _scaled(image, label, s: float):
    h, w = label.shape
    return resize_pair(image, label, max(1, int(round(h * s))), max(1, int(round(w * s))))


def random_scale(image, label, rng, lo: float = SCALE_RANGE[0], hi: float = SCALE_RANGE[1]):
    return _scaled(image, label, float(rng.uniform(lo, hi)))


def scale_from_list(image, label, rng, scales=CAFFE_SCALES):
    return _scaled(image, label, float(scales[int(rng.integers(len(scales)))]))


def rotate(image, label, angle: float, mean_rgb, ignore: int = IGNORE):
    """Rotate by ``angle`` degrees (counter-clockwise) about (w/2, h/2), same size."""
    h, w = label.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    img = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(mean_rgb))
    lab = cv2.warpAffine(label, m, (w, h), flags=cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=ignore)
    return img, lab


def random_rotate(image, label, rng, angles, mean_rgb, p: float = 0.5):
    """With probability p, rotate by an angle ~ U(lo, hi) degrees; ``angles`` is (lo, hi) or
    a number m, meaning (-m, m)."""
    if rng.random() >= p:
        return image, label
    lo, hi = (-angles, angles) if np.isscalar(angles) else angles
    return rotate(image, label, float(rng.uniform(lo, hi)), mean_rgb)


def random_blur(image, rng, p: float = 0.5, kernel: int = BLUR_KERNEL):
    if rng.random() >= p:
        return image
    return cv2.GaussianBlur(image, (kernel, kernel), 0)


def random_mirror(image, label, rng, p: float = 0.5):
    if rng.random() >= p:
        return image, label
    return np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(label[:, ::-1])


def pad_to_crop(image, label, crop: int, mean_rgb, where: str = "center", ignore: int = IGNORE):
    """Pad each side shorter than ``crop`` to it: image with the mean, label with 255."""
    h, w = label.shape
    ph, pw = max(crop - h, 0), max(crop - w, 0)
    if ph == 0 and pw == 0:
        return image, label
    top, left = (ph // 2, pw // 2) if where == "center" else (0, 0)
    img = np.empty((h + ph, w + pw, image.shape[2]), image.dtype)
    img[...] = np.asarray(mean_rgb, image.dtype)
    img[top:top + h, left:left + w] = image
    lab = np.full((h + ph, w + pw), ignore, label.dtype)
    lab[top:top + h, left:left + w] = label
    return img, lab


def crop_at(image, label, y: int, x: int, crop: int):
    return (np.ascontiguousarray(image[y:y + crop, x:x + crop]),
            np.ascontiguousarray(label[y:y + crop, x:x + crop]))


def random_crop(image, label, rng, crop: int):
    h, w = label.shape
    y = int(rng.integers(h - crop + 1))
    x = int(rng.integers(w - crop + 1))
    return crop_at(image, label, y, x, crop)


def center_crop(image, label, crop: int):
    h, w = label.shape
    return crop_at(image, label, (h - crop) // 2, (w - crop) // 2, crop)


# ---------------------------------------------------------------- pipeline

def apply(aug: Augment, image: np.ndarray, label: np.ndarray, rng: np.random.Generator):
    """RGB image (uint8 or float) and label -> (float32 image crop x crop x 3, uint8 label)."""
    if image.shape[:2] != label.shape:
        raise ValueError(f"image is {image.shape[0]}x{image.shape[1]}, label "
                         f"{label.shape[0]}x{label.shape[1]}")
    image = image.astype(np.float32)
    label = label.astype(np.uint8)
    if aug.scale_range is not None:
        image, label = random_scale(image, label, rng, *aug.scale_range)
    elif aug.scale_list is not None:
        image, label = scale_from_list(image, label, rng, aug.scale_list)
    if aug.rotate > 0:
        image, label = random_rotate(image, label, rng, aug.rotate_range, aug.mean_rgb,
                                     aug.rotate_p)
    if aug.blur:
        image = random_blur(image, rng, aug.blur_p, aug.blur_kernel)
    if aug.mirror:
        image, label = random_mirror(image, label, rng)
    image, label = pad_to_crop(image, label, aug.crop_size, aug.mean_rgb, aug.pad)
    if aug.crop == "random":
        return random_crop(image, label, rng, aug.crop_size)
    return center_crop(image, label, aug.crop_size)


def network_input(image: np.ndarray, mean_rgb) -> np.ndarray:
    """Float RGB (H, W, 3) -> (3, H, W) float32 BGR minus the mean: `psp_torch.preprocess`'s
    arithmetic (which takes uint8 only) on an augmented float image."""
    x = image.astype(np.float32) - np.asarray(mean_rgb, np.float32)
    return np.ascontiguousarray(x[:, :, ::-1].transpose(2, 0, 1))
