"""Linear algebra leftovers: Det."""

from __future__ import annotations

import numpy as np

from ..registry import register


@register("Det", since=11)
def det(x):
    """Determinant of each trailing ``[M, M]`` matrix; float16 is computed in float32."""
    work = x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
    return np.asarray(np.linalg.det(work)).astype(x.dtype, copy=False)
