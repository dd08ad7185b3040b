"""Compiled GELU (erf and tanh forms) and the one-pass epilogue of the fused products
(FusedMatMul, FusedGemm): bias, residual and activation over the product's rows.

GELU (erf) evaluates the same float32 rational function as NumPy's blocked kernel
(``activations._gelu_block``: clamp, Horner in ``x^2`` with the same float32 coefficients,
one division), in one pass instead of eight; the tanh form uses Eigen's float32 rational
``tanh``. Per-element operation order is fixed, so results do not depend on the row blocks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import activations as _np_act
from .. import fused
from ..parallel import matmul, run_blocks
from . import MIN_WORK
from ._numba import njit, njit_inline, ro
from .conv import CLIP, CODES, LEAKY, NONE, RELU, act_code

GELU, GELU_TANH = 4, 5
GELU_CODES = {"Gelu": GELU, "GeluTanh": GELU_TANH}

_F = np.float32
_CLAMP = _F(_np_act._GELU_CLAMP)
_N0, _N1, _N2, _N3, _N4, _N5, _N6 = (_F(c) for c in _np_act._GELU_NUM)
_D1, _D2, _D3, _D4 = (_F(c) for c in _np_act._GELU_DEN[1:])  # monic: D0 = 1
_S = _F(math.sqrt(2.0 / math.pi))
_S3 = _F(0.044715 * math.sqrt(2.0 / math.pi))
# Eigen's generic_fast_tanh_float: tanh(x) = x P(x^2) / Q(x^2) on [-7.905, 7.905]
_T_CLAMP = _F(7.90531110763549805)
_TA = tuple(_F(c) for c in (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11,
                            5.12229709037114e-08, 1.48572235717979e-05, 6.37261928875436e-04,
                            4.89352455891786e-03))
_TB = tuple(_F(c) for c in (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03,
                            4.89352518554385e-03))
_TA0, _TA1, _TA2, _TA3, _TA4, _TA5, _TA6 = _TA
_TB0, _TB1, _TB2, _TB3 = _TB
_TINY = _F(0.0004)


@njit_inline
def gelu1(v):
    """0.5 x (1 + erf(x / sqrt 2)) of a float32, as ``_gelu_block`` computes it."""
    c = -_CLAMP if v < -_CLAMP else v
    c = _CLAMP if c > _CLAMP else c
    x2 = c * c
    num = (((((x2 * _N0 + _N1) * x2 + _N2) * x2 + _N3) * x2 + _N4) * x2 + _N5) * x2 + _N6
    num = num * c
    den = (((x2 + _D1) * x2 + _D2) * x2 + _D3) * x2 + _D4
    return (num / den + _F(0.5)) * v


@njit_inline
def tanh1(v):
    """Eigen's float32 rational tanh (within a few ulp; exact limits +-1)."""
    c = -_T_CLAMP if v < -_T_CLAMP else v
    c = _T_CLAMP if c > _T_CLAMP else c
    x2 = c * c
    p = (((((x2 * _TA0 + _TA1) * x2 + _TA2) * x2 + _TA3) * x2 + _TA4) * x2 + _TA5) * x2 + _TA6
    q = ((x2 * _TB0 + _TB1) * x2 + _TB2) * x2 + _TB3
    t = c * p / q
    return v if abs(v) < _TINY else t


@njit_inline
def act2(v, code, alpha, lo, hi):
    """Activation ``code`` of one float32 value (the conv codes, GELU and its tanh form)."""
    if code == RELU:  # lo is 0, typed
        v = lo if v < lo else v
    elif code == LEAKY:
        v = v * alpha if v < 0 else v
    elif code == CLIP:
        v = lo if v < lo else v
        v = hi if v > hi else v
    elif code == GELU:
        v = gelu1(v)
    elif code == GELU_TANH:
        inner = (v * v * _S3 + _S) * v
        v = (tanh1(inner) * _F(0.5) + _F(0.5)) * v
    return v


@njit
def rows_epilogue(y, b, z, r0, r1, code, alpha, lo, hi):
    """In place on rows ``r0:r1`` of the C-contiguous float32 (R, N) ``y``:
    ``act((y + b) + z)``; ``b`` (N,) or empty, ``z`` (R, N) or with no rows."""
    has_b = b.shape[0] > 0
    has_z = z.shape[0] > 0
    alpha = y.dtype.type(alpha)
    lo = y.dtype.type(lo)
    hi = y.dtype.type(hi)
    n = y.shape[1]
    for r in range(r0, r1):
        row = y[r]
        if has_b and has_z:
            res = z[r]
            for i in range(n):
                row[i] = act2(row[i] + b[i] + res[i], code, alpha, lo, hi)
        elif has_b:
            for i in range(n):
                row[i] = act2(row[i] + b[i], code, alpha, lo, hi)
        elif has_z:
            res = z[r]
            for i in range(n):
                row[i] = act2(row[i] + res[i], code, alpha, lo, hi)
        else:
            for i in range(n):
                row[i] = act2(row[i], code, alpha, lo, hi)


@njit
def gelu_into(x, y, code):
    """``y = gelu(x)`` over flat float32 runs (``code``: GELU or GELU_TANH)."""
    zero = np.float32(0)
    for i in range(x.shape[0]):
        y[i] = act2(x[i], code, zero, zero, zero)


_F32 = np.dtype(np.float32)
_EMPTY1 = ro(np.empty(0, np.float32))
_EMPTY2 = ro(np.empty((0, 0), np.float32))


def _code(activation: str, alpha: float, lo: float, hi: float):
    if activation in GELU_CODES:
        return GELU_CODES[activation], 0.0, 0.0, 0.0
    if activation not in CODES:
        return None
    return act_code(fused._activation(activation, alpha, lo, hi))


def _epilogue(y: np.ndarray, bias, z, code) -> bool:
    """The compiled epilogue in place on ``y``; False (nothing done) where it does not apply.

    Its checks cost what a small product costs (a decoder step's products have one row), so
    they are plain attribute tests: a bias of ``n`` elements whose last axis is ``n`` and
    that has no more axes than ``y`` broadcasts to ``y`` (``np.broadcast_shapes`` alone took
    4 us), and the plan's constants are read-only already."""
    if code is None or y.dtype != _F32 or y.ndim < 1 or not y.flags.c_contiguous or y.size == 0:
        return False
    n = y.shape[-1]
    b = _EMPTY1
    if bias is not None:
        if (bias.dtype != _F32 or bias.size != n or bias.ndim > y.ndim
                or (bias.ndim and bias.shape[-1] != n)):
            return False
        b = ro(np.ascontiguousarray(bias.reshape(n)))
    zz = _EMPTY2
    if z is not None:
        if z.dtype != _F32 or z.shape != y.shape:
            return False
        zz = ro(np.ascontiguousarray(z).reshape(-1, n))
    rows = y.reshape(-1, n)
    count = rows.shape[0]
    if count == 1 or y.size < MIN_WORK["rows"]:  # one block: no cut to consider
        rows_epilogue(rows, b, zz, 0, count, *code)
        return True

    def block(lo: int, hi: int) -> None:
        rows_epilogue(rows, b, zz, lo, hi, *code)

    run_blocks(block, count, float(y.size), MIN_WORK["rows"], exact=True)
    return True


def fused_matmul(a, b, bias=None, z=None, *, activation="", activation_alpha=0.01,
                 clip_min=-np.inf, clip_max=np.inf):
    """``fused.fused_matmul`` with the bias, residual and activation in one compiled pass."""
    y = matmul(a, b)
    if _epilogue(y, bias, z, _code(activation, activation_alpha, clip_min, clip_max)):
        return y
    if bias is not None:  # NumPy's passes, as fused.fused_matmul
        y = fused._add_into(y, bias)
    if z is not None:
        y = fused._add_into(y, z)
    return fused.activate(y, activation, activation_alpha, clip_min, clip_max)


def fused_gemm(a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=1,
               activation="", activation_alpha=0.01, clip_min=-np.inf, clip_max=np.inf):
    """``fused.fused_gemm`` with the bias and activation in one compiled pass (alpha and beta
    of 1; other Gemms are NumPy's)."""
    if alpha == 1.0 and (beta == 1.0 or c is None):
        y = matmul(a.T if transA else a, b.T if transB else b)
        code = _code(activation, activation_alpha, clip_min, clip_max)
        if c is None or c.size == y.shape[-1] or c.shape == y.shape:
            bias, res = (c, None) if c is None or c.size == y.shape[-1] else (None, c)
            if _epilogue(y, bias, res, code):
                return y
        if c is not None:  # NumPy's passes, as fused.fused_gemm
            y = fused._add_into(y, c)
        return fused.activate(y, activation, activation_alpha, clip_min, clip_max)
    return fused.fused_gemm(a, b, c, alpha=alpha, beta=beta, transA=transA, transB=transB,
                            broadcast=broadcast, activation=activation,
                            activation_alpha=activation_alpha, clip_min=clip_min,
                            clip_max=clip_max)


def _gelu(x: np.ndarray, approximate: str):
    if x.dtype != _F32 or approximate not in ("none", "tanh"):
        return None
    flat = np.ascontiguousarray(x).reshape(-1)
    y = np.empty(flat.shape, dtype=np.float32)
    gelu_into(ro(flat), y, GELU if approximate == "none" else GELU_TANH)
    return y.reshape(x.shape)


def gelu(x, *, approximate="none"):
    """ONNX Gelu (opset 20) in one compiled pass for float32."""
    y = _gelu(x, approximate)
    return _np_act.gelu(x, approximate=approximate) if y is None else y


def fused_gelu(x, *, approximate="none"):
    """The fused-domain Gelu (a written-out GELU) in one compiled pass for float32."""
    y = _gelu(x, approximate)
    return fused.fused_gelu(x, approximate=approximate) if y is None else y


def warm(variant: str, keywords: dict[str, Any]) -> None:
    """Compile (or load from the cache) the float32 kernel a ``variant`` step calls."""
    y = np.zeros((1, 4), np.float32)
    if variant in ("gelu", "fused_gelu"):
        gelu_into(ro(y.reshape(-1)), y.reshape(-1).copy(), GELU)
    else:
        rows_epilogue(y, ro(np.zeros(4, np.float32)), ro(y.copy()), 0, 1, NONE, 0.0, 0.0, 0.0)
