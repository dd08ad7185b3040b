"""Resize and Upsample: separable per-axis interpolation with cached index/weight tables.

Each resized axis gets a table of source indices ``idx[out, taps]`` and weights
``w[out, taps]`` (edge-clamped, normalised), computed once per geometry and cached. Nearest
resizing is a gather (or a broadcast copy for integer upscales); linear / cubic resizing is a
weighted sum of ``taps`` gathers along the axis.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from ..registry import register

_Table = tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int]


def _source_coords(
    ctm: str, out: int, size: int, scale: float, roi: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Source coordinate of every output index, and the tf_crop_and_resize outside mask."""
    y = np.arange(out, dtype=np.float64)
    width = scale * size  # the un-floored output length, as the spec's formulas use it
    if ctm == "align_corners":
        return (np.zeros(out) if width == 1 else y * (size - 1) / (width - 1)), None
    if ctm == "asymmetric":
        return y / scale, None
    if ctm == "tf_crop_and_resize":
        start, end = roi
        if width == 1:
            x = np.full(out, (end - start) * (size - 1) / 2)
        else:
            x = y * (end - start) * (size - 1) / (width - 1)
        x = x + start * (size - 1)
        return x, (x < 0) | (x > size - 1)
    if ctm == "pytorch_half_pixel":
        return (np.full(out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5), None
    if ctm == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if ctm == "half_pixel_symmetric":
        offset = size / 2 * (1 - out / width)
        return offset + (y + 0.5) / scale - 0.5, None
    raise ValueError(f"unknown coordinate_transformation_mode {ctm!r}")


def _nearest_index(x: np.ndarray, nearest_mode: str) -> np.ndarray:
    if nearest_mode == "round_prefer_floor":
        return np.ceil(x - 0.5)
    if nearest_mode == "round_prefer_ceil":
        return np.floor(x + 0.5)
    if nearest_mode == "floor":
        return np.floor(x)
    if nearest_mode == "ceil":
        return np.ceil(x)
    if nearest_mode == "simple":  # Resize-10 / Upsample: floor, ceil when downsampling
        return np.floor(x)
    raise ValueError(f"unknown nearest_mode {nearest_mode!r}")


def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel with coefficient ``a``."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _filter_taps(
    x: np.ndarray, mode: str, scale: float, a: float, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour indices (unclamped) and weights of a linear / cubic filter at ``x``."""
    support = 1.0 if mode == "linear" else 2.0
    s = min(scale, 1.0) if antialias else 1.0
    start = int(math.floor(-support / s)) + 1
    taps = 2 - 2 * start
    base = np.floor(x).astype(np.int64)
    idx = base[:, None] + np.arange(start, start + taps)[None, :]
    d = (idx - x[:, None]) * s
    if mode == "linear":
        w = np.clip(1 - np.abs(d), 0, 1)
    else:
        w = _cubic(d, a)
    return idx, w / w.sum(axis=1, keepdims=True)


@functools.lru_cache(maxsize=256)
def _axis_table(
    size: int, out: int, scale: float, mode: str, ctm: str, nearest_mode: str, a: float,
    exclude_outside: bool, antialias: bool, roi: tuple[float, float], dtype: str,
) -> _Table:
    """(idx, weights or None, outside mask or None, integer repeat factor or 0) of one axis."""
    x, outside = _source_coords(ctm, out, size, scale, roi)
    if mode == "nearest":
        if nearest_mode == "simple" and scale < 1:
            idx = np.ceil(x)
        else:
            idx = _nearest_index(x, nearest_mode)
        idx = np.clip(idx, 0, size - 1).astype(np.intp)
        rep = out // size if size and out % size == 0 else 0
        if rep and outside is None and not np.array_equal(idx, np.arange(out) // rep):
            rep = 0
        return idx, None, outside, rep
    idx, w = _filter_taps(x, mode, scale, a, antialias)
    if exclude_outside:
        w = np.where((idx < 0) | (idx >= size), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    idx = np.clip(idx, 0, size - 1).astype(np.intp)
    return idx, w.astype(dtype), outside, 0


def _shaped(v: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    return v.reshape(v.shape + (1,) * (ndim - axis - 1))


def _apply_filter(data: np.ndarray, axis: int, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted sum of ``taps`` gathers of ``data`` along ``axis``."""
    result = None
    for k in range(idx.shape[1]):
        wk = _shaped(w[:, k], axis, data.ndim)
        term = np.take(data, idx[:, k], axis=axis)
        if result is None:
            result = np.multiply(term, wk, out=term)
        else:
            term *= wk
            result += term
    assert result is not None
    return result


def _nearest(data: np.ndarray, tables: dict[int, _Table]) -> np.ndarray:
    if all(t[3] for t in tables.values()):  # integer upscales: repeats, innermost axis first
        for ax in sorted(tables, reverse=True):
            data = np.repeat(data, tables[ax][3], axis=ax)
        return data
    if len(tables) == 1:
        (ax, t), = tables.items()
        return np.take(data, t[0], axis=ax)
    index = [np.arange(n) if ax not in tables else tables[ax][0]
             for ax, n in enumerate(data.shape)]
    return data[np.ix_(*index)]


def _resize(
    x: np.ndarray, out_shape: Sequence[int], scales: Sequence[float], mode: str, ctm: str,
    nearest_mode: str, a: float, exclude_outside: int, antialias: int,
    roi: Sequence[tuple[float, float]], extrapolation_value: float,
) -> np.ndarray:
    work = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    tables = {}
    for ax, (n, m, s) in enumerate(zip(x.shape, out_shape, scales, strict=False)):
        if n == m and s == 1.0 and roi[ax] == (0.0, 1.0):
            continue
        tables[ax] = _axis_table(n, int(m), float(s), mode, ctm, nearest_mode, float(a),
                                 bool(exclude_outside), bool(antialias), roi[ax], work.str)
    if not tables:
        return x.copy()
    if any(m == 0 for m in out_shape):
        return np.empty(tuple(int(m) for m in out_shape), x.dtype)
    if mode == "nearest":
        y = _nearest(x, tables)
    else:
        y = x.astype(work, copy=False)
        for ax in sorted(tables, reverse=True):  # innermost first: its gathers are slowest
            idx, w = tables[ax][:2]
            y = _apply_filter(y, ax, idx, w)
        if x.dtype != work:
            y = _cast(y, x.dtype)
    for ax, (_, _, outside, _) in tables.items():
        if outside is not None and outside.any():
            y = np.where(_shaped(outside, ax, y.ndim), np.asarray(extrapolation_value, y.dtype), y)
    return y


def _cast(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Saturating cast of interpolated values back to the input type."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(y), info.min, info.max).astype(dtype)
    return y.astype(dtype)


def _geometry(
    shape: tuple[int, ...], scales: np.ndarray | None, sizes: np.ndarray | None,
    axes: Sequence[int] | None, policy: str,
) -> tuple[list[int], list[float]]:
    """Output shape and per-axis scale factors from ``scales`` or ``sizes``."""
    r = len(shape)
    axes = [a + r if a < 0 else a for a in (axes if axes else range(r))]
    if sizes is not None and np.asarray(sizes).size:
        sizes = np.asarray(sizes, dtype=np.int64).ravel()
        out = list(shape)
        sc = [1.0] * r
        ratios = [int(m) / shape[ax] for ax, m in zip(axes, sizes, strict=False)]
        if policy == "stretch":
            for ax, m, q in zip(axes, sizes, ratios, strict=False):
                out[ax], sc[ax] = int(m), q
        else:
            q = min(ratios) if policy == "not_larger" else max(ratios)
            for ax in axes:
                out[ax], sc[ax] = int(shape[ax] * q + 0.5), q
        return out, sc
    scales = np.asarray(scales, dtype=np.float32).astype(np.float64).ravel()
    sc = [1.0] * r
    for ax, s in zip(axes, scales, strict=False):
        sc[ax] = float(s)
    return [int(n * s) for n, s in zip(shape, sc, strict=False)], sc


def _roi_pairs(roi: np.ndarray | None, r: int, axes: Sequence[int] | None,
               ctm: str) -> list[tuple[float, float]]:
    pairs = [(0.0, 1.0)] * r
    if ctm != "tf_crop_and_resize" or roi is None or np.asarray(roi).size == 0:
        return pairs
    roi = np.asarray(roi, dtype=np.float64).ravel()
    axes = [a + r if a < 0 else a for a in (axes if axes else range(r))]
    k = len(axes)
    for i, ax in enumerate(axes):
        pairs[ax] = (float(roi[i]), float(roi[k + i]))
    return pairs


@register("Resize", since=10)
def resize_10(x, scales, *, mode="nearest"):
    """Resize-10: asymmetric coordinates, Upsample-style nearest rounding."""
    x = np.asarray(x)
    out, sc = _geometry(x.shape, scales, None, None, "stretch")
    return _resize(x, out, sc, mode, "asymmetric", "simple", -0.75, 0, 0,
                   [(0.0, 1.0)] * x.ndim, 0.0)


@register("Resize", since=11)
def resize_11(
    x, roi=None, scales=None, sizes=None, *, mode="nearest",
    coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor",
    cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=0.0, antialias=0,
    axes=None, keep_aspect_ratio_policy="stretch",
):
    x = np.asarray(x)
    ctm = coordinate_transformation_mode
    out, sc = _geometry(x.shape, scales, sizes, axes, keep_aspect_ratio_policy)
    return _resize(x, out, sc, mode, ctm, nearest_mode, cubic_coeff_a, exclude_outside,
                   antialias, _roi_pairs(roi, x.ndim, axes, ctm), extrapolation_value)


@register("Upsample", since=7)
def upsample_7(x, *, scales, mode="nearest"):
    return resize_10(x, np.asarray(scales, np.float32), mode=mode)


@register("Upsample", since=9)
def upsample_9(x, scales, *, mode="nearest"):
    return resize_10(x, scales, mode=mode)
