"""Unique: distinct values or slices, with first indices, inverse indices and counts."""

from __future__ import annotations

import numpy as np

from ..registry import register


@register("Unique", since=11)
def unique(x, *, axis=None, sorted=1):
    values, first, inverse, counts = np.unique(
        x, return_index=True, return_inverse=True, return_counts=True, axis=axis
    )
    inverse = inverse.reshape(-1)
    if not sorted:  # order by first occurrence instead
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        values = np.take(values, order, axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    i64 = np.int64
    return values, first.astype(i64), inverse.astype(i64), counts.astype(i64)
