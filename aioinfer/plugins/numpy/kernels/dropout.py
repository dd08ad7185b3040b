"""Dropout: the identity at inference; in training mode a seeded random mask, rescaled."""

from __future__ import annotations

import numpy as np

from ..registry import register


def _inference(x: np.ndarray, n_outputs: int, mask_dtype: np.dtype):
    if n_outputs < 2:
        return x
    return x, np.ones(x.shape, dtype=mask_dtype)


@register("Dropout", since=1)
def dropout_v1(x, *, is_test=0, ratio=0.5, consumed_inputs=None, n_outputs=1):
    return _inference(x, n_outputs, x.dtype)


@register("Dropout", since=7)
def dropout_v7(x, *, ratio=0.5, n_outputs=1):
    return _inference(x, n_outputs, x.dtype)


@register("Dropout", since=10)
def dropout_v10(x, *, ratio=0.5, n_outputs=1):
    return _inference(x, n_outputs, np.dtype(bool))


@register("Dropout", since=12, foldable=False)
def dropout(x, ratio=None, training_mode=None, *, seed=None, n_outputs=1):
    drop = 0.5 if ratio is None else float(ratio)
    if training_mode is None or not bool(training_mode) or drop == 0.0:
        return _inference(x, n_outputs, np.dtype(bool))
    rng = np.random.RandomState(seed) if seed is not None else np.random.RandomState()
    mask = rng.uniform(0.0, 1.0, x.shape) >= drop
    y = x * mask
    y *= x.dtype.type(1.0 / (1.0 - drop))
    return (y, mask) if n_outputs >= 2 else y
