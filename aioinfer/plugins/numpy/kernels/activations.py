"""Activation functions: Relu family, sigmoid family, Softplus/Mish, Gelu, SwiGLU, Shrink."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..registry import register
from .elementwise import erf


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)); exp overflowing to inf for x < -88 gives the right limit, 0."""
    e = np.negative(x)
    with np.errstate(over="ignore"):
        np.exp(e, out=e)
    e += 1
    return np.reciprocal(e, out=e)


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
    return np.maximum(x, 0, out=...)


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


@register("Gelu", since=20)
@_rank1
def gelu(x, *, approximate="none"):
    """0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation."""
    if approximate == "tanh":
        inner = x * x
        inner *= 0.044715
        inner += 1
        inner *= x
        inner *= _SQRT_2_OVER_PI
        t = np.tanh(inner, out=inner)
    elif approximate == "none":
        t = erf(x * (1 / math.sqrt(2.0)))
    else:
        raise ValueError(f"Gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    t += 1
    t *= x
    t *= 0.5
    return t
