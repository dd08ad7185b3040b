"""Vectorisable float32 math for the fused kernels (inlined into their loops).

numba's ``np.exp`` / ``np.tanh`` of a float32 is a libm call per element, which keeps LLVM
from vectorising the loop around it: a fused chain with a Sigmoid then ran slower than NumPy's
SIMD ufuncs op by op (measured 1.7 ms against 1.1 ms on a 256K-element 7-op chain). These
are branch-free polynomial forms that LLVM turns into AVX code:

- :func:`exp1`: Cephes' ``expf`` (range reduction by ``ln 2`` in two parts, degree-6
  polynomial, the power of two built in the exponent bits), within 2 ulp; ``inf`` above
  88.72, ``0`` below -87 (no denormal is made on the way), NaN for NaN;
- :func:`tanh1`: Eigen's float32 rational ``tanh`` (a few ulp; exactly +-1 beyond 7.9);
- :func:`erf1`: the float32 rational ``erf`` of Eigen and XLA on [-4, 4] (~5e-7 relative).

Importing this module imports numba.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

_F = np.float32


def _inline(fn):
    return numba.njit(inline="always", cache=True, error_model="numpy", boundscheck=False)(fn)


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the low 32 bits of the integer ``bits``."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        low = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())

    return types.float32(bits), codegen


_LOG2E = _F(1.44269504088896341)
_C1 = _F(0.693359375)
_C2 = _F(-2.12194440e-4)
_P0, _P1, _P2, _P3, _P4, _P5 = (_F(c) for c in (1.9875691500e-4, 1.3981999507e-3,
                                                8.3334519073e-3, 4.1665795894e-2,
                                                1.6666665459e-1, 5.0000001201e-1))
_HI = _F(88.72283905206835)
_LO = _F(-87.0)


@_inline
def exp1(v):
    """``exp`` of a float32."""
    c = _LO if v < _LO else v
    c = _HI if c > _HI else c
    k = np.floor(c * _LOG2E + _F(0.5))
    r = c - k * _C1
    r = r - k * _C2
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * r * r + r + _F(1.0)
    kk = np.int32(k)
    up = kk > 0  # 2^k as 2^(k-1) * 2: k reaches 128 just below the overflow threshold
    scale = _float32_from_bits((kk - np.int32(up) + np.int32(127)) << 23)
    e = p * (_F(2.0) if up else _F(1.0)) * scale
    e = _F(np.inf) if v > _HI else e
    e = _F(0.0) if v < _LO else e
    return e if v == v else v


_T_CLAMP = _F(7.90531110763549805)
_TA0, _TA1, _TA2, _TA3, _TA4, _TA5, _TA6 = (_F(c) for c in (
    -2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
    1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03))
_TB0, _TB1, _TB2, _TB3 = (_F(c) for c in (1.19825839466702e-06, 1.18534705686654e-04,
                                          2.26843463243900e-03, 4.89352518554385e-03))
_TINY = _F(0.0004)


@_inline
def tanh1(v):
    """``tanh`` of a float32."""
    c = -_T_CLAMP if v < -_T_CLAMP else v
    c = _T_CLAMP if c > _T_CLAMP else c
    x2 = c * c
    p = (((((x2 * _TA0 + _TA1) * x2 + _TA2) * x2 + _TA3) * x2 + _TA4) * x2 + _TA5) * x2 + _TA6
    q = ((x2 * _TB0 + _TB1) * x2 + _TB2) * x2 + _TB3
    t = c * p / q
    return v if abs(v) < _TINY else t


_E_CLAMP = _F(4.0)
_EA0, _EA1, _EA2, _EA3, _EA4, _EA5, _EA6 = (_F(c) for c in (
    -2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
    -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02))
_EB0, _EB1, _EB2, _EB3, _EB4 = (_F(c) for c in (
    -1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
    -1.42647390514189e-02))


@_inline
def erf1(v):
    """``erf`` of a float32."""
    c = -_E_CLAMP if v < -_E_CLAMP else v
    c = _E_CLAMP if c > _E_CLAMP else c
    x2 = c * c
    p = (((((x2 * _EA0 + _EA1) * x2 + _EA2) * x2 + _EA3) * x2 + _EA4) * x2 + _EA5) * x2 + _EA6
    q = (((x2 * _EB0 + _EB1) * x2 + _EB2) * x2 + _EB3) * x2 + _EB4
    e = c * p / q
    e = _F(1.0) if e > _F(1.0) else e  # the rational overshoots by an ulp near |x| = 4
    return _F(-1.0) if e < _F(-1.0) else e


@_inline
def max1(a, b):
    """``np.maximum`` of two float32 values (NaN if either is NaN)."""
    return a if (a > b) | (a != a) else b


@_inline
def min1(a, b):
    """``np.minimum`` of two float32 values (NaN if either is NaN)."""
    return a if (a < b) | (a != a) else b
