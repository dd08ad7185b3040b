"""Optimizer steps of the ``ai.onnx.preview.training`` domain: Adagrad, Adam, Momentum.

Each takes ``R`` (learning rate), ``T`` (step count) and then, for n tensors, all the Xs, all the
gradients and all the optimizer states in that order; it returns the new Xs then the new states.
Scalars are applied as Python floats so float32 tensors stay float32.
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import register

_DOMAIN = "ai.onnx.preview.training"


def _groups(tensors: tuple[np.ndarray, ...], k: int) -> list[tuple[np.ndarray, ...]]:
    """Split ``x1..xn, g1..gn, s1..sn, ...`` (``k`` groups) into per-tensor tuples."""
    n, rem = divmod(len(tensors), k)
    if rem or n == 0:
        raise ValueError(f"expected a multiple of {k} tensor inputs, got {len(tensors)}")
    return list(zip(*(tensors[i * n:(i + 1) * n] for i in range(k)), strict=True))


@register("Adagrad", since=1, domain=_DOMAIN)
def adagrad(r, t, *tensors, decay_factor=0.0, epsilon=1e-6, norm_coefficient=0.0):
    rate = float(r) / (1.0 + int(t) * decay_factor)
    xs, hs = [], []
    for x, g, h in _groups(tensors, 3):
        g = g + norm_coefficient * x if norm_coefficient else g
        h_new = h + g * g
        xs.append(x - rate * g / (np.sqrt(h_new) + epsilon))
        hs.append(h_new)
    return tuple(xs + hs)


@register("Adam", since=1, domain=_DOMAIN)
def adam(r, t, *tensors, alpha=0.9, beta=0.999, epsilon=1e-6, norm_coefficient=0.0,
         norm_coefficient_post=0.0):
    step = int(t)
    rate = float(r)
    if step > 0:
        rate *= math.sqrt(1.0 - beta**step) / (1.0 - alpha**step)
    xs, vs, hs = [], [], []
    for x, g, v, h in _groups(tensors, 4):
        g = g + norm_coefficient * x if norm_coefficient else g
        v_new = alpha * v + (1.0 - alpha) * g
        h_new = beta * h + (1.0 - beta) * (g * g)
        x_new = x - rate * (v_new / (np.sqrt(h_new) + epsilon))
        xs.append((1.0 - norm_coefficient_post) * x_new if norm_coefficient_post else x_new)
        vs.append(v_new)
        hs.append(h_new)
    return tuple(xs + vs + hs)


@register("Momentum", since=1, domain=_DOMAIN)
def momentum(r, t, *tensors, alpha, beta, mode, norm_coefficient):
    """Standard (``x -= r v``) or Nesterov (``x -= r (g + alpha v)``) momentum."""
    if mode not in ("standard", "nesterov"):
        raise ValueError(f"unknown Momentum mode {mode!r}")
    rate = float(r)
    beta_t = beta if int(t) > 0 else 1.0
    xs, vs = [], []
    for x, g, v in _groups(tensors, 3):
        g = g + norm_coefficient * x if norm_coefficient else g
        v_new = alpha * v + beta_t * g
        step = v_new if mode == "standard" else g + alpha * v_new
        xs.append(x - rate * step)
        vs.append(v_new)
    return tuple(xs + vs)
