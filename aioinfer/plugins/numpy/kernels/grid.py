"""GridSample (2-D and N-D: nearest / linear / cubic, zeros / border / reflection) and
AffineGrid.

GridSample is separable per spatial dimension: each dimension contributes a few taps
(index, weight); the taps of all dimensions combine into flat gathers from ``X``.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..registry import register


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect coordinates into [lo, hi] by the nearest border, repeatedly."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    below, above = x < lo, x > hi
    d = np.where(below, lo - x, x - hi)
    n = np.floor(d / span)
    r = d - n * span
    even = n % 2 == 0
    down = np.where(even, lo + r, hi - r)
    up = np.where(even, hi - r, lo + r)
    return np.where(below, down, np.where(above, up, x))


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> list[np.ndarray]:
    """Keys' cubic weights of the taps at offsets -1, 0, 1, 2 for fraction ``t``."""
    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _taps(x: np.ndarray, size: int, mode: str, padding: str, align: int):
    """[(index, weight, valid)] of one spatial dimension at source coordinates ``x``."""
    lo, hi = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
    if mode == "nearest":
        x = np.rint(x)
    if padding == "border":  # only coordinates outside [lo, hi] move (onto [0, size-1])
        x = np.where((x < lo) | (x > hi), np.clip(x, 0, size - 1), x)
    elif padding == "reflection":
        x = _reflect(x, lo, hi)
    if mode == "nearest":
        taps = [(x.astype(np.int64), None)]
    else:
        base = np.floor(x)
        t = x - base
        base = base.astype(np.int64)
        if mode == "linear":
            taps = [(base, 1 - t), (base + 1, t)]
        else:
            taps = list(zip((base - 1, base, base + 1, base + 2), _cubic_weights(t),
                            strict=True))
    out = []
    for idx, w in taps:
        valid = None
        if padding == "zeros":
            valid = (idx >= 0) & (idx < size)
        elif padding == "reflection":
            idx = np.trunc(_reflect(idx.astype(x.dtype), lo, hi)).astype(np.int64)
        out.append((np.clip(idx, 0, size - 1), w, valid))
    return out


def _grid_sample(x, grid, mode: str, padding: str, align: int) -> np.ndarray:
    x, grid = np.asarray(x), np.asarray(grid)
    n, c, *dims = x.shape
    out_sp = grid.shape[1:-1]
    work = np.float64 if x.dtype == np.float64 else np.float32
    g = grid.astype(work, copy=False)
    per_dim = []
    for k, size in enumerate(dims):  # grid's last axis lists (x, y, z...): reversed dims
        v = g[..., len(dims) - 1 - k].reshape(n, -1)
        coord = (v + 1) / 2 * (size - 1) if align else ((v + 1) * size - 1) / 2
        per_dim.append(_taps(coord, size, mode, padding, align))
    flat = x.reshape(n, c, -1).astype(work, copy=False)
    y = np.zeros((n, c, int(np.prod(out_sp))), work)
    strides = np.cumprod([1, *dims[:0:-1]])[::-1]
    for combo in itertools.product(*per_dim):
        index = sum(t[0] * s for t, s in zip(combo, strides, strict=True))
        weight = None
        for _, w, valid in combo:
            if w is not None:
                weight = w if weight is None else weight * w
            if valid is not None:
                weight = valid.astype(work) if weight is None else weight * valid
        vals = np.take_along_axis(flat, index[:, None, :], axis=2)
        if weight is not None:
            vals *= weight[:, None, :]
        y += vals
    return y.reshape(n, c, *out_sp).astype(x.dtype, copy=False)


_MODES = {"bilinear": "linear", "bicubic": "cubic", "linear": "linear", "cubic": "cubic",
          "nearest": "nearest"}


@register("GridSample", since=16)
def grid_sample(x, grid, *, align_corners=0, mode="bilinear", padding_mode="zeros"):
    return _grid_sample(x, grid, _MODES[mode], padding_mode, align_corners)


@register("GridSample", since=20)
def grid_sample_20(x, grid, *, align_corners=0, mode="linear", padding_mode="zeros"):
    return _grid_sample(x, grid, _MODES[mode], padding_mode, align_corners)


@register("AffineGrid", since=20)
def affine_grid(theta, size, *, align_corners=0):
    """Sampling grid (N, *spatial, nd) of the affine maps ``theta`` over normalised coords."""
    theta = np.asarray(theta)
    spatial = [int(s) for s in np.asarray(size).reshape(-1)[2:]]
    axes = []
    for length in spatial:
        if align_corners:
            axes.append(np.linspace(-1.0, 1.0, length) if length > 1 else np.array([-1.0]))
        else:
            axes.append((2 * np.arange(length) + 1) / length - 1)
    mesh = np.meshgrid(*axes, indexing="ij")  # (D), H, W
    base = np.stack([*mesh[::-1], np.ones_like(mesh[0])], axis=-1)  # x, y, (z), 1
    base = base.reshape(-1, len(spatial) + 1).astype(theta.dtype)
    grid = np.matmul(base, theta.swapaxes(1, 2))  # (N, P, nd)
    return grid.reshape(theta.shape[0], *spatial, len(spatial))
