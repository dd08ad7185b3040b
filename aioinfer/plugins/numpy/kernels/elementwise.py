"""Elementwise arithmetic and activations (example module; extended by the kernel families)."""

from __future__ import annotations

import numpy as np

from ..registry import register


@register("Add", since=1)
def add(a, b):
    return np.add(a, b)


@register("Relu", since=1)
def relu(x):
    return np.maximum(x, x.dtype.type(0))
