"""What Loop and Scan stack their per-iteration outputs into (shared by the plugins)."""

from __future__ import annotations

import numpy as np

from ..model import Port


def empty_stack(port: Port, axis: int = 0) -> np.ndarray:
    """Zero iterations of a body output declared as ``port``: its element type and its dims
    (0 where not static) with a 0-long axis inserted at ``axis``."""
    dims = [d if isinstance(d, int) else 0 for d in port.shape or ()]
    dims.insert(axis % (len(dims) + 1), 0)
    return np.zeros(dims, dtype=port.element_type or np.float32)


def pad_steps(x: np.ndarray, steps: int) -> np.ndarray:
    """Zero-fill an opset-8 Scan output of a batch entry shorter than the longest one."""
    if x.shape[0] == steps:
        return x
    return np.concatenate([x, np.zeros((steps - x.shape[0], *x.shape[1:]), dtype=x.dtype)])
