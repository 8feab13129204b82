"""Video through the Segmenter: frames of a file or a camera in, a video of overlays and/or
per-frame label PNGs out (``eval/run.py --video``).

Frames are decoded by OpenCV (BGR, turned RGB), each one segmented by `Segmenter` exactly as
an image, and the overlays encoded as Motion-JPEG in an .avi of the input's size and frame
rate (opencv-python-headless writes and reads it without other codecs). The video is written
to a hidden temporary file beside its destination and renamed when the last frame is in: a
failure leaves nothing behind; Ctrl-C (how a camera run ends) keeps the frames done so far.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from .segmenter import Result, Segmenter

FOURCC = "MJPG"
SUFFIX = ".avi"
DEFAULT_FPS = 25.0          # where the source does not say (many cameras)


def is_camera(spec: str) -> bool:
    """A camera index (0, 1, ...) rather than a file name."""
    return str(spec).isdigit() and not Path(str(spec)).exists()


def source_name(spec: str) -> str:
    """The stem outputs are named after: the file's, or camera<N>."""
    return f"camera{spec}" if is_camera(spec) else Path(str(spec)).stem


def open_video(spec: str) -> cv2.VideoCapture:
    """A capture of a video file or a camera index; ValueError naming it when it cannot be
    opened."""
    spec = str(spec)
    if not is_camera(spec) and not Path(spec).is_file():
        raise FileNotFoundError(2, "no such video file", spec)
    cap = cv2.VideoCapture(int(spec) if is_camera(spec) else spec)
    if not cap.isOpened():
        cap.release()
        raise ValueError(f"{spec}: cannot open as a video" + (" (no such camera)"
                                                              if is_camera(spec) else ""))
    return cap


def frames(cap: cv2.VideoCapture, limit: int | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames until the stream ends (or `limit` frames)."""
    n = 0
    while limit is None or n < limit:
        ok, bgr = cap.read()
        if not ok or bgr is None:
            return
        n += 1
        yield np.ascontiguousarray(bgr[:, :, ::-1])


def frame_count(cap: cv2.VideoCapture, limit: int | None = None) -> int | None:
    """Frames the container announces (None for a camera or an unknown count), capped."""
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    n = n if n > 0 else None
    return limit if n is None else min(n, limit) if limit else n


class OverlayVideo:
    """The overlays as an MJPG .avi at `path`: written to a temporary file, renamed by
    `close(keep=True)`, removed by `close(keep=False)`."""

    def __init__(self, path: Path, fps: float):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.stem}.part{SUFFIX}")
        self.fps = fps if fps and np.isfinite(fps) and fps > 0 else DEFAULT_FPS
        self.writer = None
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = rgb.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*FOURCC),
                                          self.fps, (w, h))
            if not self.writer.isOpened():
                raise OSError(f"{self.path}: cannot write an {FOURCC} video here")
        self.writer.write(np.ascontiguousarray(rgb[:, :, ::-1]))
        self.frames += 1

    def close(self, keep: bool) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if keep and self.frames:
            os.replace(self.tmp, self.path)
        elif self.tmp.exists():
            self.tmp.unlink()


def segment_video(seg: Segmenter, spec: str, video_out: Path | None,
                  on_frame: Callable[[int, Result], None] | None = None,
                  limit: int | None = None, progress: bool = True) -> int:
    """Segment every frame of `spec` (a file, or a camera index) with `seg`; the overlays go to
    `video_out` (an .avi; None: no video), each frame's Result to `on_frame(index, result)`.
    Returns the number of frames."""
    from tqdm import tqdm
    cap = open_video(spec)
    video = OverlayVideo(video_out, cap.get(cv2.CAP_PROP_FPS)) if video_out else None
    n = 0
    try:
        with tqdm(total=frame_count(cap, limit), unit="frame", disable=not progress,
                  dynamic_ncols=True, desc=source_name(spec)) as bar:
            for n, frame in enumerate(frames(cap, limit), 1):
                result = seg(frame)
                if video:
                    video.add(result.overlay())
                if on_frame:
                    on_frame(n - 1, result)
                bar.update(1)
    except KeyboardInterrupt:
        if video:
            video.close(keep=True)
        raise
    except BaseException:
        if video:
            video.close(keep=False)
        raise
    finally:
        cap.release()
    if n == 0:
        if video:
            video.close(keep=False)
        raise ValueError(f"{spec}: no frame could be decoded")
    if video:
        video.close(keep=True)
    return n


__all__ = ["segment_video", "open_video", "frames", "OverlayVideo", "source_name", "is_camera"]
