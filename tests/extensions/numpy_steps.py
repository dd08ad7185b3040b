"""The preprocessing steps done by hand in NumPy: the reference the built graph must match."""

from __future__ import annotations

import numpy as np


def resize_linear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of NHWC ``x`` on half-pixel coordinates (edge-clamped)."""

    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coord = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(coord).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (coord - lo).astype(x.dtype)

    y0, y1, wy = taps(x.shape[1], height)
    x0, x1, wx = taps(x.shape[2], width)
    rows = x[:, y0] * (1 - wy)[:, None, None] + x[:, y1] * wy[:, None, None]
    return rows[:, :, x0] * (1 - wx)[:, None] + rows[:, :, x1] * wx[:, None]


def by_hand(frame: np.ndarray, height: int, width: int, mean: np.ndarray,
            scale: np.ndarray) -> np.ndarray:
    """u8 NHWC BGR -> f32, RGB, resized, normalised, NCHW."""
    x = frame.astype(np.float32)[..., ::-1]
    x = resize_linear(x, height, width)
    x = (x - mean) / scale
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
