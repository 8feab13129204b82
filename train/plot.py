"""The loss curves (and validation mIoU) as a PNG, drawn with OpenCV (no plotting library)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from psp_torch.io import atomic_write

W, H, M = 800, 420, 50          # image size, margin
COLOURS = {"loss": (40, 40, 200), "main": (200, 120, 40), "aux": (60, 160, 60),
           "val mIoU": (150, 40, 150)}          # BGR


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or y.size < n:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    head = c[1:n] / np.arange(1, n)
    return np.concatenate([head, (c[n:] - c[:-n]) / n])


def curves_png(rows: list[dict], val: list | None = None) -> bytes:
    """rows: log.jsonl records (iter, loss, main, aux); val: [[iteration, mIoU], ...]."""
    img = np.full((H, W, 3), 255, np.uint8)
    cv2.rectangle(img, (M, M // 2), (W - M, H - M), (0, 0, 0), 1)
    if not rows:
        return cv2.imencode(".png", img)[1].tobytes()
    it = np.array([r["iter"] for r in rows], np.float64)
    x0, x1 = it.min(), max(it.max(), it.min() + 1)
    series = {k: _smooth(np.array([r[k] for r in rows], np.float64), max(1, len(rows) // 100))
              for k in ("loss", "main", "aux") if all(r.get(k) is not None for r in rows)}
    top = max((float(np.nanmax(v)) for v in series.values()), default=1.0) or 1.0

    def px(x, y, ymax):
        return (int(M + (x - x0) / (x1 - x0) * (W - 2 * M)),
                int(H - M - min(max(y / ymax, 0), 1) * (H - 1.5 * M)))

    for k, y in series.items():
        pts = np.array([px(a, b, top) for a, b in zip(it, y)], np.int32)
        cv2.polylines(img, [pts], False, COLOURS[k], 1, cv2.LINE_AA)
    if val:
        pts = np.array([px(a, b, 1.0) for a, b in val], np.int32)
        cv2.polylines(img, [pts], False, COLOURS["val mIoU"], 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, tuple(int(v) for v in p), 3, COLOURS["val mIoU"], -1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, f"iteration {int(x0)}", (M, H - M + 18), font, 0.45, (0, 0, 0), 1)
    cv2.putText(img, f"{int(x1)}", (W - M - 40, H - M + 18), font, 0.45, (0, 0, 0), 1)
    cv2.putText(img, f"loss max {top:.3g}" + ("; mIoU axis 0..1" if val else ""), (M, 18), font,
                0.45, (0, 0, 0), 1)
    names = list(series) + (["val mIoU"] if val else [])
    for n, k in enumerate(names):
        x = W - M - 110 * (len(names) - n)
        cv2.putText(img, k, (x, 18), font, 0.45, COLOURS[k], 1)
    return cv2.imencode(".png", img)[1].tobytes()


def write(path, rows, val=None) -> Path:
    data = curves_png(rows, val)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
