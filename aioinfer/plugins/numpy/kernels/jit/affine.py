"""Compiled ``ChannelAffine``: ``act(x * scale[c] + shift[c])`` in one pass (NumPy's kernel
makes a multiply, an add and an activation pass), channels cut over the intra-op threads."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import affine as _np_affine
from .. import fused
from ..parallel import run_blocks
from . import MIN_WORK
from ._numba import njit, ro
from .conv import act1, act_code


@njit
def affine_rows(x, y, a, b, c0, c1, code, alpha, lo, hi):
    """``y[n, c] = act(x[n, c] * a[c] + b[c])`` for ``c0 <= c < c1``; ``x``, ``y`` (N, C, P)."""
    alpha = y.dtype.type(alpha)
    lo = y.dtype.type(lo)
    hi = y.dtype.type(hi)
    for n in range(x.shape[0]):
        for c in range(c0, c1):
            row = x[n, c]
            out = y[n, c]
            scale = a[c]
            shift = b[c]
            for p in range(row.shape[0]):
                out[p] = act1(row[p] * scale + shift, code, alpha, lo, hi)


_F32 = np.dtype(np.float32)


def channel_affine(x, scale, shift, *, activation="", activation_alpha=0.01, clip_min=-np.inf,
                   clip_max=np.inf):
    """``affine.channel_affine``, compiled for float32 with per-channel parameters."""
    try:
        code = act_code(fused._activation(activation, activation_alpha, clip_min, clip_max))
    except LookupError:
        code = None
    if (code is None or x.ndim < 2 or x.dtype != _F32 or scale.dtype != _F32
            or shift.dtype != _F32 or scale.size != x.shape[1] or shift.size != x.shape[1]
            or x.size == 0):
        return _np_affine.channel_affine(x, scale, shift, activation=activation,
                                         activation_alpha=activation_alpha, clip_min=clip_min,
                                         clip_max=clip_max)
    n, c = x.shape[:2]
    xs = np.ascontiguousarray(x).reshape(n, c, -1)
    y = np.empty(xs.shape, dtype=np.float32)
    a, b = ro(np.ascontiguousarray(scale.reshape(c))), ro(np.ascontiguousarray(shift.reshape(c)))
    xs = ro(xs)

    def channels(lo: int, hi: int) -> None:
        affine_rows(xs, y, a, b, lo, hi, *code)

    run_blocks(channels, c, float(x.size), MIN_WORK["rows"], exact=True)
    return y.reshape(x.shape)


def warm(variant: str, keywords: dict[str, Any]) -> None:
    """Compile (or load from the cache) the float32 kernel of this module."""
    x = np.zeros((1, 1, 4), np.float32)
    affine_rows(ro(x), np.empty_like(x), ro(np.ones(1, np.float32)), ro(np.zeros(1, np.float32)),
                0, 1, 0, 0.0, 0.0, 0.0)
