"""Drawing results onto frames: a label banner in a 3x5 bitmap font, a coloured border
(green: the known label was predicted, red: it was not) and detection boxes. NumPy only."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .frames import FrameResult

_GLYPHS = {  # 3 columns x 5 rows, one string per row
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"), "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"), "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "###"),
    "%": ("#.#", "..#", ".#.", "#..", "#.#"), ".": ("...", "...", "...", "...", ".#."),
    ":": ("...", ".#.", "...", ".#.", "..."), "-": ("...", "...", "###", "...", "..."),
    " ": ("...", "...", "...", "...", "..."),
}
_MASKS = {c: np.array([[ch == "#" for ch in row] for row in rows]) for c, rows in
          _GLYPHS.items()}
GREEN = (40, 220, 60)
RED = (230, 40, 40)
WHITE = (255, 255, 255)


@lru_cache(maxsize=256)
def _glyph(char: str, scale: int) -> np.ndarray:
    """The glyph's mask scaled up ``scale`` times (read-only; made once per size)."""
    mask = np.kron(_MASKS.get(char, _MASKS[" "]), np.ones((scale, scale), bool))
    mask.flags.writeable = False
    return mask


def draw_text(image: np.ndarray, text: str, x: int, y: int, scale: int = 2,
              color: tuple[int, int, int] = WHITE) -> None:
    """Draw ``text`` (digits and ``%.:- ``; other characters as spaces) in place."""
    for k, char in enumerate(text):
        mask = _glyph(char, scale)
        x0 = x + k * 4 * scale
        h = min(mask.shape[0], image.shape[0] - y)
        w = min(mask.shape[1], image.shape[1] - x0)
        if h <= 0 or w <= 0:
            break
        image[y:y + h, x0:x0 + w][mask[:h, :w]] = color


def draw_box(image: np.ndarray, box: tuple[float, float, float, float],
             color: tuple[int, int, int], thickness: int = 2) -> None:
    """Draw a rectangle's outline in place (clipped to the image)."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = sorted((max(0, min(width - 1, x0)), max(0, min(width - 1, x1))))
    y0, y1 = sorted((max(0, min(height - 1, y0)), max(0, min(height - 1, y1))))
    t = thickness
    image[y0:y0 + t, x0:x1 + 1] = color
    image[max(y1 - t + 1, 0):y1 + 1, x0:x1 + 1] = color
    image[y0:y1 + 1, x0:x0 + t] = color
    image[y0:y1 + 1, max(x1 - t + 1, 0):x1 + 1] = color


def annotate(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """A copy of ``image`` with ``result`` drawn on it: a darkened banner ``class score%``,
    boxes, and a green or red border when the frame's label is known."""
    out = np.array(image, np.uint8, copy=True)
    scale = max(1, out.shape[1] // 64)
    banner = 7 * scale
    out[:banner] >>= 2  # darken the banner (to a quarter) in place, in integers
    if result.classes:
        text = f"{result.classes[0]} {result.scores[0] * 100:.0f}%"
        draw_text(out, text, scale, scale, scale)
    for det in result.detections:
        draw_box(out, det.box, GREEN, max(1, scale // 2))
    if result.correct is not None:
        draw_box(out, (0, 0, out.shape[1] - 1, out.shape[0] - 1),
                 GREEN if result.correct else RED, max(1, scale // 2))
    return out
