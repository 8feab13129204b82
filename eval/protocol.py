"""The authors' test protocol (evaluation/eval_sub.m, scale_process.m, pre_img.m,
caffe_process.m), one pure function per step.

For an RGB uint8 image of ori_rows x ori_cols and each scale s:

1. ``long = base_size * s + 1``; the longer side becomes ``long``, the shorter
   ``round(single(long) / single(longer) * shorter)`` in float32, rounded half away from zero
   (a square image counts as "cols longer"); the uint8 image is resized to it (``imresize``
   bilinear, result uint8).
2. ``long <= crop``: one window. The image is converted to float32, padded bottom/right to
   crop x crop with the exact mean colour, mean subtracted (padding becomes exactly 0); the
   score is cropped back to new_rows x new_cols.
   ``long > crop``: sliding windows. A side shorter than crop is padded bottom/right *on the
   uint8 image* with the mean rounded to uint8 (124, 117, 104), so padded pixels read
   (0.32, 0.221, 0.061) after mean subtraction. ``stride = ceil(2/3 * crop)``,
   ``grid = ceil(single(padded - crop) / stride) + 1`` per axis; window i starts at
   ``i * stride`` (0-based), ends at ``min(start + crop, padded)``, start = end - crop.
   Window probabilities are summed (float32, windows in row-major order) and divided by the
   per-pixel window count, then cropped to new_rows x new_cols.
3. Each window: net input = (pixel - mean), channels BGR, (1, 3, crop, crop). The net runs on
   it and on its left-right mirror; the raw scores (the mirrored one flipped back) are summed
   and exp-normalised over classes (softmax of the sum): ``softmax="stable"`` subtracts the
   maximum first; ``"matlab"`` is caffe_process.m's ``exp(s) ./ sum(exp(s))`` in float32,
   which overflows where a summed score exceeds log(FLT_MAX) = 88.7228 (Inf / Inf = NaN for
   that class, x / Inf = 0 for the others) and gives 0 / 0 = NaN where every exp underflows.
4. The per-scale map is resized to ori_rows x ori_cols (imresize bilinear on float32, with
   anti-aliasing when shrinking) and renormalised over classes (divided by its class sum).
5. The maps of all scales are summed and divided by the number of scales; prediction = argmax
   over classes as MATLAB's max: the first maximum on ties, NaN ignored, index 0 (MATLAB's 1)
   where every class is NaN.

NaN (matlab softmax) travels as MATLAB's arithmetic carries it: through the window sums and
the division by the window count, to every output pixel of imresize whose taps include it,
through the renormalisation to every class of that pixel, and through the scale sum. Every run
also follows where MATLAB's softmax would go wrong, whichever softmax it uses: a validity
channel (1 = normal, 0 = every class 0 because the class sum overflowed, NaN) rides along the
probabilities through the same windows and resizes (``segment_counted``, ``SoftmaxCounts``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from psp_torch.datasets.base import STRIDE_RATE
from psp_torch.identity import REFERENCE, REPORT, exempt
from psp_torch.presets import MEAN_RGB

from .resize import imresize

Model = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Settings:
    """Everything the protocol needs besides the model. Every field is part of a run's
    identity (run.json, --resume), of results.json's settings and of the comparison with the
    authors' settings unless declared `exempt` from them (psp_torch.identity)."""
    num_classes: int = exempt("the per-class table has it; the model and dataset fix it",
                              of=(REPORT, REFERENCE))
    crop_size: int
    base_size: int
    mean_rgb: tuple = MEAN_RGB
    scales: tuple = exempt("single scale or the authors' multi-scale set picks the published "
                           "number", of=(REFERENCE,), default=(1.0,))
    flip: bool = True
    resize: str = "matlab"      # "matlab" | "opencv"
    batch: int = exempt("how many windows (and mirrors) share a network call never changes a "
                        "prediction", default=2)
    device: str = exempt("float summation order only (run.json keeps the device kind)",
                         of=(REPORT, REFERENCE), default="cpu")
    precision: str = "fp32"     # "fp32" | "bf16" | "fp16"
    softmax: str = exempt("stable and the authors' float32 exp differ only where the latter "
                          "overflows, which every run counts and reports", of=(REFERENCE,),
                          default="stable")   # "stable" | "matlab" (caffe_process.m's, NaN path)
    stride_rate: float = STRIDE_RATE    # window stride = ceil(crop * stride_rate)
    compile: bool = exempt("compiled kernels round within the oracle bounds", of=(REFERENCE,),
                           default=False)   # the network compiled (psp_torch.compiled)


SOFTMAX_MODES = ("stable", "matlab")


@dataclass
class SoftmaxCounts:
    """Where MATLAB's float32 exp(score) softmax goes wrong, in output-image pixels.

    nan_pixels: MATLAB's final probabilities are NaN (its max then picks class 1, our 0);
    altered_pixels: not NaN, but a window pixel whose every class became 0 (class sum
    overflowed without any single exp overflowing) contributed, so MATLAB's probabilities
    differ from the stable ones; images: images with either kind; checked: images followed
    (a resumed image, read back from its PNG, is not).
    """
    nan_pixels: int = 0
    altered_pixels: int = 0
    images: int = 0
    checked: int = 0

    def add(self, other: "SoftmaxCounts") -> "SoftmaxCounts":
        self.nan_pixels += other.nan_pixels
        self.altered_pixels += other.altered_pixels
        self.images += other.images
        self.checked += other.checked
        return self

    def to_vector(self) -> np.ndarray:
        return np.array([self.nan_pixels, self.altered_pixels, self.images, self.checked],
                        np.int64)

    @classmethod
    def from_vector(cls, v) -> "SoftmaxCounts":
        return cls(*(int(x) for x in v))

    _META = "pspnet_caffe.matlab_softmax"

    def as_meta(self) -> dict:
        """One image's counts as a PNG text chunk (kept with its label PNG for --resume)."""
        return {self._META: f"nan_pixels={self.nan_pixels} altered_pixels={self.altered_pixels}"}

    @classmethod
    def from_meta(cls, meta: dict) -> "SoftmaxCounts":
        """Inverse of as_meta; an image without the chunk counts as not checked."""
        text = meta.get(cls._META)
        if text is None:
            return cls()
        try:
            fields = dict(kv.split("=") for kv in text.split())
            nan, altered = int(fields["nan_pixels"]), int(fields["altered_pixels"])
        except (ValueError, KeyError):
            return cls()
        return cls(nan, altered, int(nan + altered > 0), 1)


def matlab_round(x: float) -> int:
    """MATLAB round: half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def scaled_size(rows: int, cols: int, base_size: int, scale: float) -> tuple[int, int]:
    """(new_rows, new_cols) of one test scale (eval_sub.m)."""
    long_size = base_size * scale + 1
    long_px = math.ceil(long_size)  # imresize takes ceil of a fractional size
    if rows > cols:
        short = np.float32(long_size) / np.float32(rows) * np.float32(cols)
        return long_px, max(1, matlab_round(float(short)))
    short = np.float32(long_size) / np.float32(cols) * np.float32(rows)
    return max(1, matlab_round(float(short))), long_px


def window_stride(crop: int, rate: float = STRIDE_RATE) -> int:
    return math.ceil(crop * rate)


def grid_count(padded: int, crop: int, rate: float = STRIDE_RATE) -> int:
    """Windows along one axis: ceil(single(padded - crop) / stride) + 1."""
    return int(np.ceil(np.float32(padded - crop) / np.float32(window_stride(crop, rate)))) + 1


def window_starts(padded: int, crop: int, rate: float = STRIDE_RATE) -> list[int]:
    """0-based start of each window along one axis, shifted to end inside the padded image."""
    stride = window_stride(crop, rate)
    starts = []
    for i in range(grid_count(padded, crop, rate)):
        end = min(i * stride + crop, padded)
        starts.append(end - crop)
    return starts


def windows(pad_rows: int, pad_cols: int, crop: int,
            rate: float = STRIDE_RATE) -> list[tuple[int, int]]:
    """(y0, x0) of every window, row-major like scale_process.m's loops."""
    return [(y, x) for y in window_starts(pad_rows, crop, rate)
            for x in window_starts(pad_cols, crop, rate)]


def pad_bottom_right(img: np.ndarray, rows: int, cols: int, value: Sequence[float]) -> np.ndarray:
    """Pad (H, W, 3) to at least rows x cols at the bottom/right with a per-channel value,
    converted to img's class as MATLAB's padarray does (uint8: rounded, saturated)."""
    h, w = img.shape[:2]
    if h >= rows and w >= cols:
        return img
    if img.dtype == np.uint8:
        fill = np.array([min(255, max(0, matlab_round(v))) for v in value], np.uint8)
    else:
        fill = np.asarray(value, img.dtype)
    out = np.empty((max(h, rows), max(w, cols), img.shape[2]), img.dtype)
    out[...] = fill
    out[:h, :w] = img
    return out


def net_input(img: np.ndarray, crop: int, mean_rgb: Sequence[float]) -> np.ndarray:
    """pre_img.m: (3, crop, crop) float32 BGR, single(img) padded with the exact mean, minus mean."""
    x = img.astype(np.float32)
    mean = np.asarray(mean_rgb, np.float32)
    x = pad_bottom_right(x, crop, crop, mean)
    x = x - mean
    return np.ascontiguousarray(x[:, :, ::-1].transpose(2, 0, 1))


def _autocast(settings: Settings):
    if settings.precision == "fp32":
        return torch.autocast(device_type="cpu", enabled=False)
    dtype = torch.bfloat16 if settings.precision == "bf16" else torch.float16
    dev = torch.device(settings.device).type
    return torch.autocast(device_type=dev, dtype=dtype)


def softmax(scores: torch.Tensor, mode: str = "stable") -> torch.Tensor:
    """Softmax over dim 1 of float32 scores: "stable" (maximum subtracted) or "matlab"
    (``exp(s) ./ sum(exp(s), 3)`` in single precision, overflow and NaN included)."""
    if mode == "stable":
        return torch.softmax(scores, dim=1)
    if mode == "matlab":
        e = torch.exp(scores)
        return e / e.sum(dim=1, keepdim=True)
    raise ValueError(f"softmax must be one of {SOFTMAX_MODES}, got {mode!r}")


def matlab_validity(scores: torch.Tensor) -> torch.Tensor:
    """(N, 1, h, w) float32: what MATLAB's softmax makes of each pixel's class sum:
    NaN where a class's exp overflows (Inf / Inf), every exp underflows (0 / 0) or a score is
    NaN; 0 where only the class sum overflows (every class x / Inf = 0); 1 elsewhere.

    A pixel whose maximum score m has -87 <= m <= 88 - ln(C) is 1 for certain (exp(m) is a
    normal float32, and C * exp(m) < FLT_MAX): exp is only taken when some pixel is not."""
    top = scores.amax(dim=1, keepdim=True)
    sure = (top >= -87.0) & (top <= 88.0 - math.log(scores.shape[1]))
    if bool(sure.all()):
        return torch.ones_like(top)
    e = torch.exp(scores)
    total = e.sum(dim=1, keepdim=True)
    nan = e.isinf().any(dim=1, keepdim=True) | (total == 0) | total.isnan()
    v = torch.where(total.isinf(), 0.0, 1.0).to(scores.dtype)
    return torch.where(nan, torch.full_like(v, float("nan")), v)


def window_probs(model: Model, inputs: torch.Tensor, settings: Settings,
                 validity: bool = False) -> torch.Tensor:
    """caffe_process.m for N windows (N, 3, crop, crop) -> (N, C, crop, crop) float32.

    The windows and their mirrors go through the net in batches of settings.batch; raw scores
    of a window and of its mirror (flipped back) are summed, then softmax over classes
    (settings.softmax). validity: append matlab_validity as channel C.
    """
    inputs = inputs.to(settings.device)
    n = inputs.shape[0]
    stack = torch.cat([inputs, inputs.flip(-1)]) if settings.flip else inputs
    outs = []
    with torch.no_grad(), _autocast(settings):
        for i in range(0, stack.shape[0], max(1, settings.batch)):
            out = model(stack[i:i + settings.batch])
            if isinstance(out, dict):
                out = out["out"]
            outs.append(out.float())
    scores = torch.cat(outs)
    if scores.shape[1] != settings.num_classes or scores.shape[2:] != inputs.shape[2:]:
        raise ValueError(f"model returned scores of shape {tuple(scores.shape[1:])}, expected "
                         f"({settings.num_classes}, {inputs.shape[2]}, {inputs.shape[3]})")
    if settings.flip:
        scores = scores[:n] + scores[n:].flip(-1)
    probs = softmax(scores, settings.softmax)
    return torch.cat([probs, matlab_validity(scores)], dim=1) if validity else probs


def scale_probs(model: Model, img_scaled: np.ndarray, settings: Settings,
                validity: bool = False) -> torch.Tensor:
    """scale_process.m up to the crop back: (C, new_rows, new_cols) float32 probabilities
    (C + 1 channels with validity, the last one averaged over windows like the others)."""
    crop = settings.crop_size
    rows, cols = img_scaled.shape[:2]
    if max(rows, cols) <= crop:
        x = torch.from_numpy(net_input(img_scaled, crop, settings.mean_rgb))[None]
        return window_probs(model, x, settings, validity)[0, :, :rows, :cols]
    padded = pad_bottom_right(img_scaled, crop, crop, settings.mean_rgb)
    pad_rows, pad_cols = padded.shape[:2]
    corners = windows(pad_rows, pad_cols, crop, settings.stride_rate)
    total = torch.zeros((settings.num_classes + validity, pad_rows, pad_cols),
                        dtype=torch.float32, device=settings.device)
    count = torch.zeros((1, pad_rows, pad_cols), dtype=torch.float32, device=settings.device)
    step = max(1, settings.batch)  # windows per group: bounded memory on large images
    for g in range(0, len(corners), step):
        group = corners[g:g + step]
        inputs = np.stack([net_input(padded[y:y + crop, x:x + crop], crop, settings.mean_rgb)
                           for y, x in group])
        probs = window_probs(model, torch.from_numpy(inputs), settings, validity)
        for (y, x), p in zip(group, probs):
            total[:, y:y + crop, x:x + crop] += p
            count[:, y:y + crop, x:x + crop] += 1
    return (total / count)[:, :rows, :cols]


def renormalise(probs: torch.Tensor) -> torch.Tensor:
    """Divide by the sum over classes (dim 0)."""
    return probs / probs.sum(dim=0, keepdim=True)


def scaled_images(image: np.ndarray, settings: Settings) -> list[np.ndarray]:
    """Step 1 for every scale: the uint8 image resized so its long side is base * s + 1."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} "
                         f"{image.shape}")
    rows, cols = image.shape[:2]
    return [imresize(image, scaled_size(rows, cols, settings.base_size, s), settings.resize)
            for s in settings.scales]


def segment(model: Model, image: np.ndarray, settings: Settings,
            scaled: list[np.ndarray] | None = None) -> torch.Tensor:
    """The whole protocol on one RGB uint8 image (H, W, 3): (C, H, W) float32 probabilities.

    `scaled`: the output of scaled_images(image, settings) when computed elsewhere (the data
    loader's worker processes do it while the network runs).
    """
    return segment_counted(model, image, settings, scaled)[0]


def segment_counted(model: Model, image: np.ndarray, settings: Settings,
                    scaled: list[np.ndarray] | None = None
                    ) -> tuple[torch.Tensor, SoftmaxCounts]:
    """segment() and the SoftmaxCounts of the image (MATLAB's softmax path followed through the
    validity channel, whichever softmax settings.softmax uses)."""
    if scaled is None:
        scaled = scaled_images(image, settings)
    rows, cols = image.shape[:2]
    c = settings.num_classes
    total = nan = altered = None
    for img_s in scaled:
        p = scale_probs(model, img_s, settings, validity=True)
        if bool((p[c] == 1).all()):        # the usual case: nothing to follow
            p = imresize(p[:c], (rows, cols), settings.resize, channels_first=True)
            bad = part = torch.zeros((rows, cols), dtype=torch.bool, device=p.device)
        else:
            p = imresize(p, (rows, cols), settings.resize, channels_first=True)
            v = p[c]
            bad, part = v.isnan() | (v == 0), (v > 0) & (v < 1)
        nan = bad if nan is None else nan | bad
        altered = part if altered is None else altered | part
        p = renormalise(p[:c])
        total = p if total is None else total + p
    altered &= ~nan
    counts = SoftmaxCounts(int(nan.sum()), int(altered.sum()),
                           int(bool((nan | altered).any())), 1)
    return total / len(scaled), counts


def predict(probs: torch.Tensor) -> np.ndarray:
    """argmax over classes as MATLAB's ``[~, i] = max(p, [], 3)``, (H, W) int64: the first
    maximum on ties; NaN ignored; 0 where every class is NaN (MATLAB's index 1)."""
    nan = probs.isnan()
    if nan.any():
        probs = probs.masked_fill(nan, float("-inf"))
    return probs.argmax(dim=0).cpu().numpy()


__all__ = ["Settings", "SoftmaxCounts", "SOFTMAX_MODES", "softmax", "matlab_validity",
           "segment_counted", "scaled_size", "window_stride", "grid_count", "window_starts", "windows",
           "pad_bottom_right", "net_input", "window_probs", "scale_probs", "renormalise",
           "scaled_images", "segment", "predict", "matlab_round"]
