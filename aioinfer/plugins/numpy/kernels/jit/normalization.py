"""Compiled LayerNorm over the last axis (the fused-domain LayerNorm of a written-out
LayerNorm, and ONNX LayerNormalization with one output), one row at a time.

Per row: the mean, the centred row, its mean square, then ``d * (1 / sqrt(var + eps)) * scale
+ b`` (NumPy's ``layer_norm_last`` divides by the root instead: within an ulp). The sums run in
eight interleaved float32 lanes (a fixed order, so results are the same run after run and
whatever the row blocks) that vectorise, where a single accumulator would not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import fused
from .. import normalization as _np_norm
from ..parallel import run_blocks
from . import MIN_WORK
from ._numba import njit, njit_inline, ro


@njit_inline
def lane_sum(v):
    """The sum of a float32 run in eight lanes, the lanes added pairwise, then the tail."""
    n = v.shape[0]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = v.dtype.type(0)
    end = n - n % 8
    for i in range(0, end, 8):
        s0 += v[i]
        s1 += v[i + 1]
        s2 += v[i + 2]
        s3 += v[i + 3]
        s4 += v[i + 4]
        s5 += v[i + 5]
        s6 += v[i + 6]
        s7 += v[i + 7]
    total = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for i in range(end, n):
        total += v[i]
    return total


@njit
def layer_norm_rows(x, y, scale, b, eps, r0, r1):
    """Rows ``r0:r1`` of ``y`` (R, N) = LayerNorm of ``x`` (R, N); ``scale``/``b`` (N,) or
    empty."""
    n = x.shape[1]
    has_s = scale.shape[0] > 0
    has_b = b.shape[0] > 0
    inv_n = x.dtype.type(1.0 / n)
    eps = x.dtype.type(eps)
    for r in range(r0, r1):
        row = x[r]
        out = y[r]
        mean = lane_sum(row) * inv_n
        for i in range(n):
            out[i] = row[i] - mean
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = x.dtype.type(0)
        end = n - n % 8
        for i in range(0, end, 8):
            s0 += out[i] * out[i]
            s1 += out[i + 1] * out[i + 1]
            s2 += out[i + 2] * out[i + 2]
            s3 += out[i + 3] * out[i + 3]
            s4 += out[i + 4] * out[i + 4]
            s5 += out[i + 5] * out[i + 5]
            s6 += out[i + 6] * out[i + 6]
            s7 += out[i + 7] * out[i + 7]
        sq = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
        for i in range(end, n):
            sq += out[i] * out[i]
        inv = x.dtype.type(1) / np.sqrt(sq * inv_n + eps)  # one division per row
        if has_s and has_b:
            for i in range(n):
                out[i] = out[i] * inv * scale[i] + b[i]
        elif has_s:
            for i in range(n):
                out[i] = out[i] * inv * scale[i]
        elif has_b:
            for i in range(n):
                out[i] = out[i] * inv + b[i]
        else:
            for i in range(n):
                out[i] = out[i] * inv


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _vector(v, n: int, dtype) -> np.ndarray | None:
    """``v`` as a contiguous (n,) vector of ``dtype``, an empty one for None; None if it
    does not broadcast along the last axis only."""
    if v is None:
        return np.empty(0, dtype=dtype)
    if v.dtype != dtype or v.size != n or (v.ndim and v.shape[-1] != n):
        return None
    return np.ascontiguousarray(v.reshape(n))


def _layer_norm(x, scale, b, epsilon: float) -> np.ndarray | None:
    if x.dtype not in _FLOATS or x.ndim == 0 or x.size == 0:
        return None
    n = x.shape[-1]
    s, c = _vector(scale, n, x.dtype), _vector(b, n, x.dtype)
    if s is None or c is None:
        return None
    rows = ro(np.ascontiguousarray(x).reshape(-1, n))
    y = np.empty(rows.shape, dtype=x.dtype)
    s, c = ro(s), ro(c)

    def block(lo: int, hi: int) -> None:
        layer_norm_rows(rows, y, s, c, float(epsilon), lo, hi)

    run_blocks(block, rows.shape[0], float(x.size) * 4, MIN_WORK["rows"], exact=True)
    return y.reshape(x.shape)


def fused_layer_norm(x, scale=None, b=None, *, epsilon=1e-5):
    """``fused.fused_layer_norm``, compiled for float32/float64 rows."""
    y = _layer_norm(x, scale, b, epsilon)
    return fused.fused_layer_norm(x, scale, b, epsilon=epsilon) if y is None else y


def layer_norm(x, scale, b=None, *, axis=-1, epsilon=1e-5, stash_type=1, n_outputs=1):
    """ONNX LayerNormalization: compiled over the last axis with one output, in ``x``'s
    dtype where that is what NumPy's kernel computes in (float32/float64)."""
    if (n_outputs == 1 and x.ndim and axis % x.ndim == x.ndim - 1
            and np.result_type(x, scale, *(() if b is None else (b,))) == x.dtype):
        y = _layer_norm(x, scale, b, epsilon)
        if y is not None:
            return y
    return _np_norm.layer_norm(x, scale, b, axis=axis, epsilon=epsilon, stash_type=stash_type,
                               n_outputs=n_outputs)


def warm(variant: str, keywords: dict[str, Any]) -> None:
    """Compile (or load from the cache) the float32 kernel of this module."""
    x = np.ones((1, 9), np.float32)
    for s in (np.ones(9, np.float32), np.empty(0, np.float32)):
        layer_norm_rows(ro(x), np.empty_like(x), ro(s), ro(s), 1e-5, 0, 1)
