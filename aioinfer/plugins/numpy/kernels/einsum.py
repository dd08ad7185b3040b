"""Einsum via numpy's optimizing contraction (BLAS-backed where the path allows)."""

from __future__ import annotations

import numpy as np

from ..registry import register

_NATIVE = frozenset("efdgFDGbBhHiIlLqQ?")


@register("Einsum", since=12)
def einsum(*inputs, equation):
    """Evaluate ``equation``; exotic float types (bfloat16, ...) compute in float32."""
    arrays = [np.asarray(x) for x in inputs]
    eq = equation.replace(" ", "")
    dtype = np.result_type(*arrays) if arrays else np.dtype(np.float32)
    if dtype.char not in _NATIVE:
        out = np.einsum(eq, *[a.astype(np.float32) for a in arrays], optimize=True)
        return np.asarray(out).astype(dtype)
    if len(arrays) == 1:
        return np.asarray(np.einsum(eq, arrays[0]))
    return np.asarray(np.einsum(eq, *arrays, optimize=True))
