"""Activation functions: Relu family, sigmoid family, Softplus/Mish, Gelu, SwiGLU, Shrink."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ..registry import register
from .elementwise import FloatArray, blockwise, erf, erf_rational, polyval

_BLOCK = 1 << 16
_ZEROS: dict[np.dtype[Any], npt.NDArray[Any]] = {}


def sigmoid(x: FloatArray) -> FloatArray:
    """1 / (1 + exp(-x)); exp overflowing to inf for x < -88 gives the right limit, 0.

    Kept in this form rather than 0.5 tanh(x/2) + 0.5 (25% faster) for its relative accuracy
    in the lower tail (sigmoid(-20) = 2e-9, not 0).
    """
    e = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(e, out=e)
    e += 1
    return np.divide(1.0, e, out=e)


def _max_zero(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """max(x, 0) in blocks against a zero array: numpy's maximum with a scalar operand is not
    vectorised (it is ~1.5x slower than with an array)."""
    if x.size <= _BLOCK or not x.flags.c_contiguous:
        return np.maximum(x, 0, out=...)
    zeros = _ZEROS.get(x.dtype)
    if zeros is None:
        zeros = _ZEROS.setdefault(x.dtype, np.zeros(_BLOCK, dtype=x.dtype))
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _BLOCK):  # blocks, not elements
        stop = min(start + _BLOCK, flat.size)
        np.maximum(flat[start:stop], zeros[: stop - start], out=out[start:stop])
    return out.reshape(x.shape)


def _softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))."""
    out = np.log1p(np.exp(-np.abs(x)))
    out += np.maximum(x, 0)
    return out


def _rank1(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` on 0-d inputs as shape (1,), so in-place steps never meet numpy scalars.

    The result is also brought back to the input's dtype: Python-float attributes promote
    ml_dtypes types such as bfloat16 to float32.
    """

    @functools.wraps(fn)
    def kernel(x, *args, **attrs):
        if x.ndim == 0:
            return fn(x.reshape(1), *args, **attrs).reshape(()).astype(x.dtype, copy=False)
        return fn(x, *args, **attrs).astype(x.dtype, copy=False)

    return kernel


def _with_legacy(op: str, fn: Callable[..., Any], since: int = 6) -> None:
    """Register ``fn`` at ``since`` and a consumed_inputs-accepting copy at opset 1."""

    def legacy(*args, consumed_inputs=None, **attrs):
        return fn(*args, **attrs)

    register(op, since=1)(legacy)
    register(op, since=since)(fn)


@_rank1
def relu(x):
    return _max_zero(x)


@_rank1
def sigmoid_kernel(x):
    return sigmoid(x)


@_rank1
def leaky_relu(x, *, alpha=0.01):
    if 0.0 <= alpha <= 1.0:
        return np.maximum(x, x * alpha)
    # max(x, 0) + alpha min(x, 0): branch-free, much faster than np.where on mixed signs.
    neg = np.minimum(x, 0)
    neg *= alpha
    neg += np.maximum(x, 0)
    return neg


@_rank1
def prelu(x, slope):
    neg = np.minimum(x, 0) * slope
    neg += np.maximum(x, 0)
    return neg


def _prelu_channelwise(x, slope):
    # Before opset 7 there is no numpy broadcasting: a 1-D slope of C values is per channel
    # (axis 1), as the PyTorch exporter of that era relied on.
    if slope.ndim == 1 and x.ndim > 2 and slope.size == x.shape[1] != 1:
        slope = slope.reshape((-1,) + (1,) * (x.ndim - 2))
    return prelu(x, slope)


def _expm1_negative_part(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """expm1(min(x, 0) / scale): zero where x >= 0."""
    y = np.minimum(x, 0)
    if scale != 1.0:
        y /= scale
    return np.expm1(y, out=y)


@_rank1
def elu(x, *, alpha=1.0):
    y = _expm1_negative_part(x)
    y *= alpha
    y += np.maximum(x, 0)
    return y


@_rank1
def selu(x, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    y = _expm1_negative_part(x)
    y *= alpha
    y += np.maximum(x, 0)
    y *= gamma
    return y


@_rank1
def hard_sigmoid(x, *, alpha=0.2, beta=0.5):
    y = x * alpha
    y += beta
    return np.clip(y, 0, 1, out=y)


_with_legacy("Relu", relu)
_with_legacy("Sigmoid", sigmoid_kernel)
_with_legacy("LeakyRelu", leaky_relu)
_with_legacy("PRelu", _prelu_channelwise)
register("PRelu", since=7)(prelu)
_with_legacy("Elu", elu)
_with_legacy("Selu", selu)
_with_legacy("HardSigmoid", hard_sigmoid)


@register("Celu", since=12)
@_rank1
def celu(x, *, alpha=1.0):
    y = _expm1_negative_part(x, alpha)
    y *= alpha
    y += np.maximum(x, 0)
    return y


@register("HardSwish", since=14)
@_rank1
def hard_swish(x):
    return x * hard_sigmoid(x, alpha=1.0 / 6, beta=0.5)


@register("Softplus", since=1)
@_rank1
def softplus(x):
    return _softplus(x)


@register("Softsign", since=1)
@_rank1
def softsign(x):
    denom = np.abs(x)
    denom += 1
    return np.divide(x, denom, out=denom)


@register("Mish", since=18)
@_rank1
def mish(x):
    y = np.tanh(_softplus(x))
    y *= x
    return y


@register("Swish", since=24)
@_rank1
def swish(x, *, alpha=1.0):
    y = sigmoid(x * alpha)
    y *= x
    return y


@register("SwiGLU", since=28)
@_rank1
def swiglu(a, b, *, alpha=1.0):
    y = sigmoid(a * alpha)
    y *= a
    y *= b
    return y


@register("ThresholdedRelu", since=10)
@_rank1
def thresholded_relu(x, *, alpha=1.0):
    return np.where(x > alpha, x, 0).astype(x.dtype, copy=False)


@register("Shrink", since=9)
@_rank1
def shrink(x, *, bias=0.0, lambd=0.5):
    y = np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0))
    return y.astype(x.dtype, copy=False)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
# 0.5 erf(x / sqrt 2) = x N(x^2) / D(x^2) for |x| <= _GELU_CLAMP. The rational function wobbles
# by an ulp around +-0.5 near its end; clamped at 99% it is exactly +-0.5 there, so Gelu is
# exactly 0 for large negative x, not x * 6e-8.
_ERF_CLAMP, _GELU_NUM, _GELU_DEN = erf_rational(1 / math.sqrt(2.0), 0.5)
_GELU_CLAMP = 0.99 * _ERF_CLAMP


def _gelu_block(x: FloatArray, out: FloatArray, s1: FloatArray, s2: FloatArray) -> None:
    """x (0.5 + 0.5 erf(x / sqrt 2)) in float32, all passes on one cache-sized block."""
    xc = np.clip(x, -_GELU_CLAMP, _GELU_CLAMP, out=s1)
    x2 = np.multiply(xc, xc, out=s2)
    num = polyval(_GELU_NUM, x2, out=out)
    num *= xc
    den = polyval(_GELU_DEN, x2, out=s1)
    np.divide(num, den, out=out)
    out += 0.5
    out *= x


def _gelu_tanh_block(x: FloatArray, out: FloatArray, s1: FloatArray, s2: FloatArray) -> None:
    """x (0.5 + 0.5 tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    y = np.multiply(x, x, out=out)
    y *= 0.044715 * _SQRT_2_OVER_PI
    y += _SQRT_2_OVER_PI
    y *= x
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    y *= x


@register("Gelu", since=20)
def gelu(x, *, approximate="none"):
    """0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation; computed in float32 blocks
    (float64 on the double-accurate erf)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"Gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    if x.dtype == np.float64:
        return _gelu_double(x, approximate)
    return blockwise(_gelu_block if approximate == "none" else _gelu_tanh_block, x)


def _gelu_double(x: npt.NDArray[np.float64], approximate: str) -> npt.NDArray[np.float64]:
    if approximate == "tanh":
        t = x * x
        t *= 0.044715
        t += 1
        t *= x
        t *= _SQRT_2_OVER_PI
        np.tanh(t, out=t)
    else:
        t = np.asarray(erf(x * (1 / math.sqrt(2.0))))
    t += 1
    t *= x
    t *= 0.5
    return t
