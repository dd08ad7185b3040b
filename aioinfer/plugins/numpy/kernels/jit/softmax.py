"""Compiled Softmax over the last axis (float32): max, shifted exp, sum and scaling by the
sum's reciprocal per row in one kernel, where NumPy makes four passes over the whole array.

``exp`` is ``_math.exp1`` (Cephes' expf, within 2 ulp; NumPy's own float32 exp is within
about 3), the max and the sum run in eight lanes in a fixed order: the same result run after
run and whatever the row blocks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import softmax as _np_softmax
from ..parallel import run_blocks
from . import MIN_WORK
from ._math import exp1
from ._numba import njit, njit_inline, ro
from .normalization import lane_sum


@njit_inline
def lane_max(v):
    """The largest value of a float32 run (NaN is not propagated here: the caller's shifted
    row carries it), in eight lanes."""
    n = v.shape[0]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = v[0]
    end = n - n % 8
    for i in range(0, end, 8):
        m0 = v[i] if v[i] > m0 else m0
        m1 = v[i + 1] if v[i + 1] > m1 else m1
        m2 = v[i + 2] if v[i + 2] > m2 else m2
        m3 = v[i + 3] if v[i + 3] > m3 else m3
        m4 = v[i + 4] if v[i + 4] > m4 else m4
        m5 = v[i + 5] if v[i + 5] > m5 else m5
        m6 = v[i + 6] if v[i + 6] > m6 else m6
        m7 = v[i + 7] if v[i + 7] > m7 else m7
    m0 = m1 if m1 > m0 else m0
    m2 = m3 if m3 > m2 else m2
    m4 = m5 if m5 > m4 else m4
    m6 = m7 if m7 > m6 else m6
    m0 = m2 if m2 > m0 else m0
    m4 = m6 if m6 > m4 else m4
    m = m4 if m4 > m0 else m0
    for i in range(end, n):
        m = v[i] if v[i] > m else m
    return m


@njit
def softmax_rows(x, y, r0, r1):
    """Rows ``r0:r1`` of ``y`` = softmax of the rows of ``x`` (float32, (R, N), N > 0)."""
    n = x.shape[1]
    for r in range(r0, r1):
        row = x[r]
        out = y[r]
        m = lane_max(row)
        for i in range(n):
            out[i] = exp1(row[i] - m)
        inv = np.float32(1.0) / lane_sum(out)  # one division per row, as onnxruntime
        for i in range(n):
            out[i] = out[i] * inv


_F32 = np.dtype(np.float32)


def _rows(x: np.ndarray, n: int) -> np.ndarray | None:
    if x.dtype != _F32 or n == 0 or x.size == 0:
        return None
    rows = ro(np.ascontiguousarray(x).reshape(-1, n))
    y = np.empty(rows.shape, dtype=np.float32)

    def block(lo: int, hi: int) -> None:
        softmax_rows(rows, y, lo, hi)

    run_blocks(block, rows.shape[0], float(x.size) * 8, MIN_WORK["rows"], exact=True)
    return y.reshape(x.shape)


def softmax(x, *, axis=-1):
    """ONNX Softmax (opset 13): compiled along the last axis for float32."""
    y = _rows(x, x.shape[-1]) if x.ndim and axis % x.ndim == x.ndim - 1 else None
    return _np_softmax.softmax(x, axis=axis) if y is None else y


def softmax_v1(x, *, axis=1):
    """ONNX Softmax before opset 13: over the trailing block from ``axis``, compiled."""
    y = None
    if x.ndim:
        y = _rows(x, math.prod(x.shape[axis % x.ndim :]))
    return _np_softmax.softmax_v1(x, axis=axis) if y is None else y


def warm(variant: str, keywords: dict[str, Any]) -> None:
    """Compile (or load from the cache) the float32 kernel of this module."""
    x = np.zeros((1, 9), np.float32)
    softmax_rows(ro(x), np.empty_like(x), 0, 1)
