"""The pictures of an evaluation report, drawn with OpenCV and numpy (no plotting library):
arrays in, RGB uint8 arrays (or SVG text) out; `png` encodes.

- `confusion_image`: the confusion matrix, each row (a true class) divided by its pixels:
  white 0 -> dark blue 1, light grey for a class with no labelled pixel; rows are labels,
  columns predictions, the last column "(no class)"; class names on both axes while a cell is
  at least `MIN_NAMED_CELL` px, else every tenth id. 150 classes: 12 px cells, ~2100 px wide.
- `legend_image`: every class's colour swatch, id and name, in columns of `LEGEND_ROWS`.
- `iou_svg`: per-class IoU as horizontal bars in the class colours, best first (SVG text,
  every name escaped for HTML).
- `panels`: one image's image | prediction overlay | ground truth, side by side.

Names come from files (a model's meta, a class-name list): they reach an image through
`label_text` (printable ASCII, shortened), and the SVG through html.escape.
"""
from __future__ import annotations

import html

import cv2
import numpy as np

from caffe_proto.printable import printable

FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (20, 20, 20)
EMPTY_ROW = (225, 225, 225)          # a class with no labelled pixel
HIGH = np.array((8, 48, 107), np.float32)        # colour of a row share of 1 (RGB)
MIN_NAMED_CELL = 8                   # px: smaller cells get id ticks instead of names
NAME_CHARS = 28                      # characters of a name drawn in an image
LEGEND_ROWS = 50
PANEL_WIDTH = 480                    # px of each panel of a worst image
IGNORED = (224, 224, 192)            # ground-truth pixels not scored (VOC's colour of 255)


def label_text(name, limit: int = NAME_CHARS) -> str:
    """A name from a file as OpenCV can draw it: printable ASCII (others as escapes), at most
    `limit` characters (a cut one ends in '~')."""
    s = printable(name, limit=10 * limit).encode("ascii", "backslashreplace").decode("ascii")
    return s if len(s) <= limit else s[:limit - 1] + "~"


def png(rgb: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def colour_table(palette: np.ndarray) -> np.ndarray:
    """(256, 3) uint8: the palette's colours, black for ids past it (255: no class)."""
    table = np.zeros((256, 3), np.uint8)
    n = min(len(palette), 256)
    table[:n] = np.asarray(palette, np.uint8)[:n]
    return table


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(text, FONT, scale, 1)[0][0]


def _scale_for(height: int) -> float:
    """A Hershey font scale whose capitals are about `height` px high."""
    return max(0.25, min(0.5, height / 22.0))


def row_shares(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shares, labelled): each row divided by its sum (0 where it has none); the rows' sums."""
    conf = np.asarray(confusion, np.float64)
    labelled = conf.sum(1)
    shares = np.divide(conf, labelled[:, None], out=np.zeros_like(conf),
                       where=labelled[:, None] > 0)
    return shares, labelled


def confusion_image(confusion: np.ndarray, names) -> np.ndarray:
    """The row-normalised confusion matrix (C, C + 1) as an RGB image with labelled axes."""
    shares, labelled = row_shares(confusion)
    c, cols = shares.shape
    cell = int(np.clip(1800 // max(cols, 1), 6, 32))
    named = cell >= MIN_NAMED_CELL
    scale = _scale_for(cell - 3)
    labels = [f"{i} {label_text(n)}" for i, n in enumerate(names)] + ["(no class)"]
    if not named:
        labels = [str(i) if i % 10 == 0 else "" for i in range(c)] + ["none"]
    margin = max(_text_width(t, scale) for t in labels) + 12
    title_h = 44
    top = title_h + margin
    h, w = top + c * cell + 40, margin + cols * cell + 20
    img = np.full((h, w, 3), 255, np.uint8)
    # cells: white -> HIGH
    rgb = 255 - shares[..., None] * (255 - HIGH)
    rgb[labelled == 0] = EMPTY_ROW
    block = np.repeat(np.repeat(np.round(rgb).astype(np.uint8), cell, 0), cell, 1)
    img[top:top + c * cell, margin:margin + cols * cell] = block
    step = cell if c <= 30 else 10 * cell
    for k in range(0, c + 1, max(1, step // cell)):
        y = top + k * cell
        cv2.line(img, (margin, y), (margin + cols * cell, y), (200, 200, 200), 1)
    for k in range(0, cols + 1, max(1, step // cell)):
        x = margin + k * cell
        cv2.line(img, (x, top), (x, top + c * cell), (200, 200, 200), 1)
    cv2.rectangle(img, (margin, top), (margin + cols * cell, top + c * cell), INK, 1)
    base = (cell + int(22 * scale)) // 2
    for i, t in enumerate(labels[:c]):            # row names, right-aligned
        if t:
            cv2.putText(img, t, (margin - 6 - _text_width(t, scale), top + i * cell + base),
                        FONT, scale, INK, 1, cv2.LINE_AA)
    strip = np.full((cell * cols, margin, 3), 255, np.uint8)   # column names, drawn turned
    for j, t in enumerate(labels):
        if t:
            cv2.putText(strip, t, (6, j * cell + base), FONT, scale, INK, 1, cv2.LINE_AA)
    img[title_h:top, margin:margin + cols * cell] = np.rot90(strip)
    cv2.putText(img, "rows: true class; columns: predicted; each row / its labelled pixels",
                (8, 18), FONT, 0.5, INK, 1, cv2.LINE_AA)
    cv2.putText(img, "0", (8, 36), FONT, 0.45, INK, 1, cv2.LINE_AA)
    for k in range(100):                                       # the colour bar
        v = 255 - k / 99 * (255 - HIGH)
        cv2.rectangle(img, (22 + 2 * k, 26), (23 + 2 * k, 38),
                      tuple(int(x) for x in np.round(v)), -1)
    cv2.putText(img, "1", (228, 36), FONT, 0.45, INK, 1, cv2.LINE_AA)
    return img


def legend_image(names, palette: np.ndarray) -> np.ndarray:
    """Every class: its colour swatch, id and name; columns of `LEGEND_ROWS` rows."""
    colours = colour_table(palette)
    texts = [f"{i:>3} {label_text(n)}" for i, n in enumerate(names)]
    rows = min(LEGEND_ROWS, max(len(texts), 1))
    ncols = max(1, -(-len(texts) // rows))
    row_h, sw, scale = 20, 16, 0.45
    col_w = sw + 12 + max((_text_width(t, scale) for t in texts), default=0) + 20
    img = np.full((rows * row_h + 12, ncols * col_w + 8, 3), 255, np.uint8)
    for i, t in enumerate(texts):
        x, y = 8 + (i // rows) * col_w, 6 + (i % rows) * row_h
        cv2.rectangle(img, (x, y), (x + sw, y + sw - 2), tuple(int(v) for v in colours[i]), -1)
        cv2.rectangle(img, (x, y), (x + sw, y + sw - 2), INK, 1)
        cv2.putText(img, t, (x + sw + 8, y + 13), FONT, scale, INK, 1, cv2.LINE_AA)
    return img


def iou_svg(names, ious, palette: np.ndarray, width: int = 760) -> str:
    """Per-class IoU (fractions; None / NaN drawn as 0) as an SVG bar chart, best first."""
    colours = colour_table(palette)
    vals = [0.0 if v is None or v != v else float(v) for v in ious]
    order = sorted(range(len(vals)), key=lambda i: (-vals[i], i))
    row, left, right = 16, 250, 60
    bar_w = width - left - right
    h = row * len(order) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
             f'viewBox="0 0 {width} {h}" font-family="sans-serif" font-size="11" '
             f'role="img" aria-label="IoU per class">']
    for k in (0, 25, 50, 75, 100):
        x = left + bar_w * k / 100
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{h - 20}" stroke="#ddd"/>'
                     f'<text x="{x:.1f}" y="{h - 6}" text-anchor="middle">{k}</text>')
    for r, i in enumerate(order):
        y = r * row
        rgb = "#%02x%02x%02x" % tuple(int(v) for v in colours[i])
        name = html.escape(printable(names[i], limit=40))
        parts.append(
            f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{i} {name}</text>'
            f'<rect x="{left}" y="{y + 2}" width="{bar_w * vals[i]:.1f}" height="{row - 4}" '
            f'fill="{rgb}" stroke="#333" stroke-width="0.5"/>'
            f'<text x="{left + bar_w * vals[i] + 4:.1f}" y="{y + 12}">{100 * vals[i]:.2f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _fit(a: np.ndarray, width: int, nearest: bool) -> np.ndarray:
    h, w = a.shape[:2]
    if w <= width:
        return a
    size = (width, max(1, round(h * width / w)))
    return cv2.resize(a, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def panels(image: np.ndarray, pred: np.ndarray, label: np.ndarray, palette: np.ndarray,
           ignore: int = 255) -> np.ndarray:
    """image | image blended half and half with the prediction's colours | the ground truth
    in colours (pixels not scored: `IGNORED`), each at most `PANEL_WIDTH` px wide, with titles."""
    colours = colour_table(palette)
    overlay = np.round(image.astype(np.float32) * 0.5 + colours[pred].astype(np.float32) * 0.5)
    truth = colours[label]
    truth[label == ignore] = IGNORED
    shown = [_fit(image, PANEL_WIDTH, False), _fit(overlay.astype(np.uint8), PANEL_WIDTH, False),
             _fit(truth, PANEL_WIDTH, True)]
    h, w = shown[0].shape[:2]
    gap, head = 6, 22
    out = np.full((h + head, 3 * w + 2 * gap, 3), 255, np.uint8)
    for k, (p, title) in enumerate(zip(shown, ("image", "prediction", "ground truth"))):
        x = k * (w + gap)
        out[head:head + p.shape[0], x:x + p.shape[1]] = p
        cv2.putText(out, title, (x + 4, 16), FONT, 0.5, INK, 1, cv2.LINE_AA)
    return out
