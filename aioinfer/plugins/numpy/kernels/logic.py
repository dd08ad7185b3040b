"""Comparisons, boolean logic, bitwise ops, BitShift, IsNaN/IsInf and Where."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..registry import register
from .elementwise import legacy_broadcast


def _binary_kernel(ufunc: np.ufunc) -> Callable[[Any, Any], np.ndarray]:
    def kernel(a, b):
        return ufunc(a, b, out=...)  # out=... keeps 0-d results arrays

    kernel.__name__ = ufunc.__name__
    return kernel


def _equal(a, b):
    if a.dtype == object or b.dtype == object:  # strings
        return np.asarray(np.equal(a, b), dtype=np.bool_)
    return np.equal(a, b, out=...)


def _register_with_legacy(op: str, fn: Callable[[Any, Any], Any], modern: int = 7) -> None:
    """Register ``fn``; opset 1 to 6 also get the ``broadcast``/``axis`` attribute form."""

    def legacy(a, b, *, axis=None, broadcast=0):
        return fn(a, legacy_broadcast(a, b, broadcast, axis))

    register(op, since=1)(legacy)
    register(op, since=modern)(fn)


_LEGACY_BINARY = {
    "Equal": _equal,
    "Greater": _binary_kernel(np.greater),
    "Less": _binary_kernel(np.less),
    "And": _binary_kernel(np.logical_and),
    "Or": _binary_kernel(np.logical_or),
    "Xor": _binary_kernel(np.logical_xor),
}
for _op, _fn in _LEGACY_BINARY.items():
    _register_with_legacy(_op, _fn)

_MODERN_BINARY = {
    "GreaterOrEqual": (np.greater_equal, 12),
    "LessOrEqual": (np.less_equal, 12),
    "BitwiseAnd": (np.bitwise_and, 18),
    "BitwiseOr": (np.bitwise_or, 18),
    "BitwiseXor": (np.bitwise_xor, 18),
}
for _op, (_ufunc, _since) in _MODERN_BINARY.items():
    register(_op, since=_since)(_binary_kernel(_ufunc))


@register("Not", since=1)
def not_(x):
    return np.logical_not(x, out=...)


@register("BitwiseNot", since=18)
def bitwise_not(x):
    return np.invert(x, out=...)


@register("BitShift", since=11)
def bit_shift(x, y, *, direction):
    """Shifts of ``>= bits`` or negative give 0 (-1 for a right shift of a negative X).

    NumPy's shift loops already behave that way (they guard the shift count), and its right
    shift of a signed type is arithmetic, as opset 28 specifies.
    """
    y = y.astype(x.dtype, copy=False)
    if direction == "LEFT":
        return np.left_shift(x, y, out=...)
    if direction == "RIGHT":
        return np.right_shift(x, y, out=...)
    raise ValueError(f"BitShift direction must be LEFT or RIGHT, got {direction!r}")


@register("IsNaN", since=9)
def is_nan(x):
    return np.isnan(x, out=...)


@register("IsInf", since=10)
def is_inf(x, *, detect_negative=1, detect_positive=1):
    if detect_negative and detect_positive:
        return np.isinf(x, out=...)
    if detect_positive:
        return np.equal(x, np.inf, out=...)
    if detect_negative:
        return np.equal(x, -np.inf, out=...)
    return np.zeros(x.shape, dtype=np.bool_)


def _bit_select(condition: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(x & m) | (y & ~m) with m all-ones where ``condition``: branch-free, so unlike
    ``np.where`` it does not slow down ~20x on irregular masks."""
    bits = np.dtype(f"u{x.dtype.itemsize}")
    shape = np.broadcast_shapes(condition.shape, x.shape, y.shape)
    mask = np.broadcast_to(condition, shape).astype(bits)
    np.negative(mask, out=mask)
    out = np.bitwise_and(x.view(bits), mask, out=...)
    np.invert(mask, out=mask)
    mask &= y.view(bits)
    out |= mask
    return out.view(x.dtype)


@register("Where", since=9)
def where(condition, x, y):
    if x.dtype == y.dtype and x.dtype.itemsize in (1, 2, 4, 8) and x.dtype != object:
        return _bit_select(condition, x, y)
    return np.where(condition, x, y)
