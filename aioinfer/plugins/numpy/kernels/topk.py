"""TopK: the k largest (or smallest) values along an axis and their int64 indices."""

from __future__ import annotations

import numpy as np

from ..registry import register


def top_k(x: np.ndarray, k: int, axis: int, largest: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted top-k; equal values keep the lower index first, as the spec requires.

    For ``largest``, a stable ascending sort of the axis-reversed input puts equal values
    in descending original index; reading that order backwards gives descending values with
    ties in ascending index.
    """
    axis = axis % x.ndim
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise ValueError(f"TopK k={k} is out of range for axis of size {n}")
    if largest:
        order = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
        picks = np.arange(n - 1, n - 1 - k, -1)
        idx = (n - 1) - np.take(order, picks, axis=axis)
    else:
        order = np.argsort(x, axis=axis, kind="stable")
        idx = np.take(order, np.arange(k), axis=axis)
    idx = idx.astype(np.int64, copy=False)
    return np.take_along_axis(x, idx, axis=axis), idx


@register("TopK", since=1)
def top_k_1(x, *, k, axis=-1):
    return top_k(x, k, axis, 1)


@register("TopK", since=10)
def top_k_10(x, k, *, axis=-1):
    return top_k(x, int(np.asarray(k).reshape(-1)[0]), axis, 1)


@register("TopK", since=11)
def top_k_11(x, k, *, axis=-1, largest=1, sorted=1):  # noqa: A002 - the ONNX attribute name
    return top_k(x, int(np.asarray(k).reshape(-1)[0]), axis, largest)
