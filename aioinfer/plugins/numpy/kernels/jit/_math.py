"""Vectorisable float32 math for the compiled kernels: ``exp`` without a libm call per
element (numba's ``math.exp`` is a scalar call that keeps loops from vectorising).

``exp1(x)`` (inlined into the caller's loop) is Cephes' ``expf``: range reduction by ``ln 2``
in two parts and a degree-6 polynomial, within 2 ulp; the power of two is built in the
exponent bits (``bitcast``). Above 88.72 it gives inf, below -87 zero (no denormal is ever
made: masked attention scores of -3.4e38 would otherwise run 2.3x slower), NaN for NaN.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from ._numba import njit_inline

_F = np.float32
_LOG2E = _F(1.44269504088896341)
_C1 = _F(0.693359375)
_C2 = _F(-2.12194440e-4)
_P0 = _F(1.9875691500e-4)
_P1 = _F(1.3981999507e-3)
_P2 = _F(8.3334519073e-3)
_P3 = _F(4.1665795894e-2)
_P4 = _F(1.6666665459e-1)
_P5 = _F(5.0000001201e-1)
_HI = _F(88.72283905206835)
# below -87 the result would be within a factor 1.4 of the smallest normal float: flushed to 0
# there, so that no denormal (microcode-slow) value is ever computed on the way
_LO = _F(-87.0)


@intrinsic
def float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bits are the low 32 bits of the integer ``bits``."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        low = builder.trunc(args[0], ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low, ir.FloatType())

    return types.float32(bits), codegen


@njit_inline
def exp1(v):
    """``exp`` of a float32 (Cephes expf)."""
    c = _LO if v < _LO else v
    c = _HI if c > _HI else c
    k = np.floor(c * _LOG2E + _F(0.5))
    r = c - k * _C1
    r = r - k * _C2
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * r * r + r + _F(1.0)
    # 2^k as 2^(k-1) * 2 for k > 0: k reaches 128 just below the overflow threshold
    kk = np.int32(k)
    up = kk > 0
    scale = float32_from_bits((kk - np.int32(up) + np.int32(127)) << 23)
    e = p * (_F(2.0) if up else _F(1.0)) * scale
    e = _F(np.inf) if v > _HI else e
    e = _F(0.0) if v < _LO else e
    return e if v == v else v
