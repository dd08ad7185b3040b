"""Frames of handwritten digits: the demo's sample video and the model's training data.

One renderer serves both, so the model is trained on exactly the kind of frame it is shown: an
8x8 digit from scikit-learn's bundled set (values 0..16), scaled up bilinearly to 40-100 px,
tinted, composited onto a dark gradient with Gaussian sensor noise, anywhere in a 128x128 RGB
frame. In the video each digit is held for a few frames while it drifts and grows or shrinks.
NumPy only: the demo needs no scikit-learn at run time (the held-out digits are committed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

FRAME_SIZE = 128
"""Height and width of a rendered frame (pixels)."""
MIN_DIGIT, MAX_DIGIT = 40, 100
"""The range of a digit's rendered height and width (pixels)."""
NOISE = 12.0
"""Standard deviation of the sensor noise (on the 0..255 scale)."""


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an ``H x W`` or ``H x W x C`` float array with ONNX ``Resize`` semantics
    (``mode=linear``, ``coordinate_transformation_mode=half_pixel``, edges clamped)."""
    in_h, in_w = image.shape[:2]
    ys = np.clip((np.arange(height) + 0.5) * in_h / height - 0.5, 0, in_h - 1)
    xs = np.clip((np.arange(width) + 0.5) * in_w / width - 0.5, 0, in_w - 1)
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, in_h - 1), np.minimum(x0 + 1, in_w - 1)
    extra = (None,) * (image.ndim - 2)
    wy = (ys - y0).astype(np.float32)[(slice(None), None, *extra)]
    wx = (xs - x0).astype(np.float32)[(None, slice(None), *extra)]
    pixels = np.asarray(image, np.float32)
    top = pixels[y0][:, x0] * (1 - wx) + pixels[y0][:, x1] * wx
    bottom = pixels[y1][:, x0] * (1 - wx) + pixels[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


@dataclass(frozen=True)
class Placement:
    """Where and how one digit is drawn: its centre (x, y) and size in pixels, its RGB tint
    (0..255) and the background's two corner colours."""

    cx: float
    cy: float
    size: float
    tint: tuple[float, float, float]
    background: tuple[tuple[float, float, float], tuple[float, float, float]]


def random_placement(rng: np.random.Generator, frame: int = FRAME_SIZE) -> Placement:
    """A placement drawn from the ranges the video uses (the whole digit inside the frame)."""
    size = float(rng.uniform(MIN_DIGIT, MAX_DIGIT))
    half = size / 2
    cx, cy = (float(v) for v in rng.uniform(half, frame - half, 2))
    tint = tuple(float(v) for v in rng.uniform(170, 255, 3))
    top = tuple(float(v) for v in rng.uniform(0, 70, 3))
    bottom = tuple(float(v) for v in rng.uniform(0, 70, 3))
    return Placement(cx, cy, size, tint, (top, bottom))  # type: ignore[arg-type]


def render(digit: np.ndarray, placement: Placement, rng: np.random.Generator,
           frame: int = FRAME_SIZE) -> np.ndarray:
    """One ``frame x frame x 3`` uint8 RGB frame showing ``digit`` (8x8, values 0..16)."""
    top, bottom = (np.asarray(c, np.float32) for c in placement.background)
    ramp = np.linspace(0, 1, frame, dtype=np.float32)[:, None, None]
    image = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (frame, frame, 3)).copy()
    size = max(int(round(placement.size)), 8)
    alpha = np.clip(resize_bilinear(np.asarray(digit, np.float32) / 16.0, size, size), 0, 1)
    y0 = int(round(placement.cy - size / 2))
    x0 = int(round(placement.cx - size / 2))
    ys = slice(max(y0, 0), min(y0 + size, frame))
    xs = slice(max(x0, 0), min(x0 + size, frame))
    a = alpha[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0, None]
    tint = np.asarray(placement.tint, np.float32)
    image[ys, xs] = image[ys, xs] * (1 - a) + tint * a
    image += rng.normal(0, NOISE, image.shape).astype(np.float32)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def _between(a: Placement, b: Placement, t: float) -> Placement:
    mix = lambda u, v: u + (v - u) * t  # noqa: E731
    return Placement(mix(a.cx, b.cx), mix(a.cy, b.cy), mix(a.size, b.size), a.tint,
                     a.background)


def sample_frames(digits: np.ndarray, labels: np.ndarray, count: int, *, hold: int = 6,
                  seed: int = 0, frame: int = FRAME_SIZE) -> Iterator[tuple[np.ndarray, int]]:
    """``count`` frames ``(image, label)`` of the sample video: the digits in order (cycling),
    each held for ``hold`` frames while it moves and scales from one random placement to
    another. Deterministic for a given ``seed``."""
    if count < 0 or hold < 1:
        raise ValueError(f"sample_frames: count must be >= 0 and hold >= 1, got {count}, {hold}")
    rng = np.random.default_rng(seed)
    start = end = random_placement(rng, frame)
    for index in range(count):
        k, step = divmod(index, hold)
        if step == 0:
            start, end = random_placement(rng, frame), random_placement(rng, frame)
            end = Placement(end.cx, end.cy, end.size, start.tint, start.background)
        t = step / (hold - 1) if hold > 1 else 0.0
        digit = digits[k % len(digits)]
        yield render(digit, _between(start, end, t), rng, frame), int(labels[k % len(labels)])
