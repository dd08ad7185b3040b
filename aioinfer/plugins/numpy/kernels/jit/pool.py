"""Compiled 2-D MaxPool and AveragePool (one output, equal strides, no dilation): per channel
the padded image in stride-phase planes, then one contiguous SIMD run per window offset, as
the depthwise convolution (``jit/conv.py``) does; NumPy's kernels for every other case.

MaxPool propagates NaN as NumPy's ``maximum`` does; AveragePool sums the window in offset
order and multiplies by NumPy's own per-position inverse counts (``pool._inverse_counts``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import pool as _np_pool
from ..parallel import run_blocks
from . import MIN_WORK
from ._numba import njit, ro

MAX, AVG = 0, 1
U = np.uint64  # an index numba need not wrap


@njit
def pool2d(x, y, inv, c0, c1, kh_n, kw_n, s, ph, pw, op):
    """``y[:, c]`` for ``c0 <= c < c1``: max (``op`` MAX, -inf padding) or sum times ``inv``
    (OH, OW) (AVG, zero padding) over the ``kh_n`` x ``kw_n`` windows of ``x`` (N, C, H, W)
    at stride ``s`` with begin padding ``ph, pw``. Unsigned indices and no views, literal
    strides in the plane fill, as ``conv.depthwise2d`` (and for the same reasons)."""
    n_img, _, height, width = x.shape
    oh_n, ow_n = y.shape[2], y.shape[3]
    rows = oh_n + (kh_n - 1) // s + 1
    cols = ow_n + (kw_n - 1) // s
    plane = rows * cols
    run = oh_n * cols
    fill = -np.inf if op == MAX else 0.0
    planes = np.full(s * s * plane, fill, dtype=y.dtype)
    acc = np.empty(run, dtype=y.dtype)
    for n in range(n_img):
        un = U(n)
        for c in range(c0, c1):
            uc = U(c)
            for a in range(s):
                i0 = 0 if a >= ph else (ph - a + s - 1) // s
                i1 = min(rows, (height - 1 + ph - a) // s + 1)
                for bb in range(s):
                    base = (a * s + bb) * plane
                    j0 = 0 if bb >= pw else (pw - bb + s - 1) // s
                    j1 = min(cols, (width - 1 + pw - bb) // s + 1)
                    for i in range(i0, i1):
                        r = U(i * s + a - ph)
                        at = U(base + i * cols)
                        first = U(bb - pw)
                        if s == 1:
                            for j in range(j0, j1):
                                planes[at + U(j)] = x[un, uc, r, first + U(j)]
                        elif s == 2:
                            for j in range(j0, j1):
                                planes[at + U(j)] = x[un, uc, r, first + U(2 * j)]
                        else:
                            for j in range(j0, j1):
                                planes[at + U(j)] = x[un, uc, r, first + U(j * s)]
            first_tap = True
            for kh in range(kh_n):
                for kw in range(kw_n):
                    start = U(((kh % s) * s + kw % s) * plane + (kh // s) * cols + kw // s)
                    if first_tap:
                        for i in range(run):
                            acc[i] = planes[start + U(i)]
                        first_tap = False
                    elif op == MAX:
                        for i in range(run):
                            v = planes[start + U(i)]
                            m = acc[i]
                            acc[i] = m if m != m else (v if not v <= m else m)
                    else:
                        for i in range(run):
                            acc[i] += planes[start + U(i)]
            for oh in range(oh_n):
                uo = U(oh)
                at = U(oh * cols)
                if op == MAX:
                    for ow in range(ow_n):
                        o = U(ow)
                        y[un, uc, uo, o] = acc[at + o]
                else:
                    for ow in range(ow_n):
                        o = U(ow)
                        y[un, uc, uo, o] = acc[at + o] * inv[uo, o]


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _pool(x, op: int, geo, inv) -> np.ndarray:
    y = np.empty((*x.shape[:2], *geo.out), dtype=x.dtype)
    xc, inv = ro(np.ascontiguousarray(x)), ro(inv)
    kh, kw = geo.kernel
    s = geo.strides[0]
    work = float(y.size) * kh * kw

    def channels(lo: int, hi: int) -> None:
        pool2d(xc, y, inv, lo, hi, kh, kw, s, geo.begin[0], geo.begin[1], op)

    run_blocks(channels, x.shape[1], work, MIN_WORK["pool"], exact=True)
    return y


def _geometry(x, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides):
    """NumPy's pooling geometry where the compiled kernel takes the case, else None."""
    if x.ndim != 4 or x.dtype not in _FLOATS or len(kernel_shape or ()) != 2 or x.size == 0:
        return None
    geo = _np_pool._Geometry(x, auto_pad, kernel_shape, strides, dilations, pads, ceil_mode)
    if (any(d != 1 for d in geo.dilations) or geo.strides[0] != geo.strides[1]
            or min(geo.out) < 1):
        return None
    return geo


def max_pool(x, *, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None,
             pads=None, storage_order=0, strides=None, n_outputs=1):
    """ONNX MaxPool: compiled for 2-D float windows with one output."""
    geo = None if n_outputs > 1 else _geometry(x, auto_pad, ceil_mode, dilations, kernel_shape,
                                               pads, strides)
    if geo is None:
        return _np_pool.max_pool(x, auto_pad=auto_pad, ceil_mode=ceil_mode,
                                 dilations=dilations, kernel_shape=kernel_shape, pads=pads,
                                 storage_order=storage_order, strides=strides,
                                 n_outputs=n_outputs)
    return _pool(x, MAX, geo, np.empty((0, 0), dtype=x.dtype))


def average_pool(x, *, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None,
                 kernel_shape=None, pads=None, strides=None):
    """ONNX AveragePool: compiled for 2-D float windows."""
    geo = _geometry(x, auto_pad, ceil_mode, dilations, kernel_shape, pads, strides)
    if geo is None:
        return _np_pool.average_pool(x, auto_pad=auto_pad, ceil_mode=ceil_mode,
                                     count_include_pad=count_include_pad,
                                     dilations=dilations, kernel_shape=kernel_shape,
                                     pads=pads, strides=strides)
    inv = _np_pool._inverse_counts(geo, bool(count_include_pad), x.dtype)
    return _pool(x, AVG, geo, np.ascontiguousarray(inv.reshape(geo.out)))


def warm(variant: str, keywords: dict[str, Any]) -> None:
    """Compile (or load from the cache) the float32 kernel of this module."""
    x = np.zeros((1, 1, 3, 3), np.float32)
    y = np.empty((1, 1, 2, 2), np.float32)
    pool2d(ro(x), y, ro(np.ones((2, 2), np.float32)), 0, 1, 2, 2, 1, 0, 0, MAX)
