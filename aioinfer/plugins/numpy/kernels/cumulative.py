"""CumSum and CumProd (exclusive and reverse variants)."""

from __future__ import annotations

import numpy as np

from ..registry import register


def _cumulative(ufunc: np.ufunc, identity: int, x: np.ndarray, axis: np.ndarray,
                exclusive: int, reverse: int) -> np.ndarray:
    ax = int(np.asarray(axis).reshape(-1)[0])
    ax = ax % x.ndim if x.ndim else 0
    src = np.flip(x, ax) if reverse else x
    if exclusive:
        # out[0] = identity, out[i] = op(src[0..i-1]): accumulate into a shifted window.
        out = np.empty_like(x)
        head = [slice(None)] * x.ndim
        head[ax] = slice(0, 1)
        dst = np.flip(out, ax) if reverse else out
        dst[tuple(head)] = identity
        if x.shape[ax] > 1:
            tail = list(head)
            tail[ax] = slice(1, None)
            body = list(head)
            body[ax] = slice(0, -1)
            ufunc.accumulate(src[tuple(body)], axis=ax, dtype=x.dtype, out=dst[tuple(tail)])
        return out
    out = ufunc.accumulate(src, axis=ax, dtype=x.dtype)
    return np.flip(out, ax) if reverse else out


@register("CumSum", since=11)
def cum_sum(x, axis, *, exclusive=0, reverse=0):
    return _cumulative(np.add, 0, x, axis, exclusive, reverse)


@register("CumProd", since=26)
def cum_prod(x, axis, *, exclusive=0, reverse=0):
    return _cumulative(np.multiply, 1, x, axis, exclusive, reverse)
