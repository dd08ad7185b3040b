"""The Reduce family (axes attribute, then axes input from opset 13/18) and ArgMax/ArgMin."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..registry import register

Axes = tuple[int, ...] | None
Reducer = Callable[[np.ndarray, Axes, bool], np.ndarray]


def _acc_dtype(x: np.ndarray) -> np.dtype:
    """Accumulate half-precision types in float32; everything else in its own type."""
    if x.dtype == np.float16 or x.dtype.kind == "V":
        return np.dtype(np.float32)
    return x.dtype


def _trailing_sum(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray | None:
    """Sum over trailing axes of a contiguous float32/float64 array as a matrix-vector product.

    numpy's reduction over a short inner axis (ResNet's 56, say) is several times slower than
    BLAS gemv. Only for short axes on arrays of at most 1M elements: beyond that numpy is as
    fast, and a multithreaded BLAS on a busy machine can be much slower. ``None`` where this
    does not apply.
    """
    if x.dtype not in (np.float32, np.float64) or not x.flags.c_contiguous or x.ndim < 2:
        return None
    if axes is None:
        return None
    ax = sorted({a % x.ndim for a in axes})
    if ax[0] == 0 or ax != list(range(ax[0], x.ndim)):
        return None
    n = int(np.prod(x.shape[ax[0]:]))
    if not 2 <= n <= 256 or x.size == 0 or x.size > 1 << 20:
        return None
    out = x.reshape(-1, n) @ np.ones(n, dtype=x.dtype)
    kept = x.shape[: ax[0]] + ((1,) * len(ax) if keepdims else ())
    return out.reshape(kept)


def _sum(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    fast = _trailing_sum(x, axes, keepdims)
    if fast is not None:
        return fast
    return np.sum(x, axis=axes, keepdims=keepdims, dtype=_acc_dtype(x))


def _lowest(x: np.ndarray) -> Any:
    if x.dtype == np.bool_:
        return False
    return np.iinfo(x.dtype).min if x.dtype.kind in "iu" else -np.inf


def _highest(x: np.ndarray) -> Any:
    if x.dtype == np.bool_:
        return True
    return np.iinfo(x.dtype).max if x.dtype.kind in "iu" else np.inf


def _max(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    return np.max(x, axis=axes, keepdims=keepdims, initial=_lowest(x))


def _min(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    return np.min(x, axis=axes, keepdims=keepdims, initial=_highest(x))


def _mean(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    fast = _trailing_sum(x, axes, keepdims)
    if fast is not None:
        fast /= x.size // max(fast.size, 1)
        return fast
    return np.mean(x, axis=axes, keepdims=keepdims, dtype=_acc_dtype(x))


def _prod(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    return np.prod(x, axis=axes, keepdims=keepdims, dtype=_acc_dtype(x))


def _l1(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    return _sum(np.abs(x), axes, keepdims)


def _sum_square(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    return _sum(np.square(x), axes, keepdims)


def _l2(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    return np.sqrt(_sum_square(x, axes, keepdims))


def _log_sum(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    with np.errstate(divide="ignore"):  # log(0) = -inf is the defined empty-set result
        return np.log(_sum(x, axes, keepdims))


def _log_sum_exp(x: np.ndarray, axes: Axes, keepdims: bool) -> np.ndarray:
    """log(sum(exp(x - m))) + m with m the (finite) max, so nothing overflows."""
    m = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0).astype(x.dtype, copy=False)
    s = _sum(np.exp(x - m), axes, keepdims=True)
    with np.errstate(divide="ignore"):
        out = np.log(s) + m
    return out if keepdims else np.squeeze(out, axis=axes)


def _reduce(fn: Reducer, x: np.ndarray, axes: Sequence[int] | np.ndarray | None,
            keepdims: int, noop_with_empty_axes: int) -> np.ndarray:
    if axes is None or len(axes) == 0:
        if noop_with_empty_axes:
            return x
        axes_t: Axes = None
    else:
        axes_t = tuple(int(a) for a in np.asarray(axes).reshape(-1))
    out = fn(x, axes_t, bool(keepdims))
    return np.asarray(out).astype(x.dtype, copy=False)


_REDUCERS: dict[str, Reducer] = {
    "ReduceL1": _l1,
    "ReduceL2": _l2,
    "ReduceLogSum": _log_sum,
    "ReduceLogSumExp": _log_sum_exp,
    "ReduceMax": _max,
    "ReduceMean": _mean,
    "ReduceMin": _min,
    "ReduceProd": _prod,
    "ReduceSum": _sum,
    "ReduceSumSquare": _sum_square,
}


def _register_reduce(op: str, fn: Reducer) -> None:
    """Axes as an attribute up to opset 12 (ReduceSum) / 17 (the rest), then as an input."""

    def with_attr(x, *, axes=None, keepdims=1):
        return _reduce(fn, x, axes, keepdims, 0)

    def with_input(x, axes=None, *, keepdims=1, noop_with_empty_axes=0):
        return _reduce(fn, x, axes, keepdims, noop_with_empty_axes)

    with_attr.__name__ = with_input.__name__ = fn.__name__.lstrip("_")
    register(op, since=1)(with_attr)
    register(op, since=13 if op == "ReduceSum" else 18)(with_input)


for _op, _fn in _REDUCERS.items():
    _register_reduce(_op, _fn)


# --- ArgMax / ArgMin ------------------------------------------------------------------------


def _arg(fn: Callable[..., np.ndarray], x: np.ndarray, axis: int, keepdims: int,
         select_last_index: int) -> np.ndarray:
    if select_last_index:
        n = x.shape[axis]
        idx = fn(np.flip(x, axis), axis=axis, keepdims=bool(keepdims))
        idx = (n - 1) - idx
    else:
        idx = fn(x, axis=axis, keepdims=bool(keepdims))
    return np.asarray(idx, dtype=np.int64)


@register("ArgMax", since=1)
def arg_max_1(x, *, axis=0, keepdims=1):
    return _arg(np.argmax, x, axis, keepdims, 0)


@register("ArgMax", since=12)
def arg_max(x, *, axis=0, keepdims=1, select_last_index=0):
    return _arg(np.argmax, x, axis, keepdims, select_last_index)


@register("ArgMin", since=1)
def arg_min_1(x, *, axis=0, keepdims=1):
    return _arg(np.argmin, x, axis, keepdims, 0)


@register("ArgMin", since=12)
def arg_min(x, *, axis=0, keepdims=1, select_last_index=0):
    return _arg(np.argmin, x, axis, keepdims, select_last_index)
