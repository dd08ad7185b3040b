"""Random generators: RandomUniform/Normal(+Like), Bernoulli, Multinomial.

None of these fold at compile time. With a ``seed`` attribute each run draws from a fresh
generator seeded with it (so a seeded node is reproducible run to run); without one, draws come
from a process-wide generator.
"""

from __future__ import annotations

import numpy as np
from onnx.helper import tensor_dtype_to_np_dtype

from ..registry import register

_RNG = np.random.default_rng()


def _rng(seed: float | None) -> np.random.Generator:
    return _RNG if seed is None else np.random.default_rng(int(seed))


def _out_dtype(dtype: int | None, like: np.ndarray | None = None) -> np.dtype:
    if dtype is None or dtype == 0:
        if like is None:
            return np.dtype(np.float32)
        return like.dtype
    return np.dtype(tensor_dtype_to_np_dtype(dtype))


def _uniform(rng: np.random.Generator, shape, dtype: np.dtype, low: float, high: float):
    gen = dtype.type if dtype in (np.float32, np.float64) else np.float32
    out = rng.random(tuple(shape), dtype=gen)
    if (low, high) != (0.0, 1.0):
        out *= gen(high - low)
        out += gen(low)
    return out.astype(dtype, copy=False)


def _normal(rng: np.random.Generator, shape, dtype: np.dtype, mean: float, scale: float):
    gen = dtype.type if dtype in (np.float32, np.float64) else np.float32
    out = rng.standard_normal(tuple(shape), dtype=gen)
    if (mean, scale) != (0.0, 1.0):
        out *= gen(scale)
        out += gen(mean)
    return out.astype(dtype, copy=False)


@register("RandomUniform", since=1, foldable=False)
def random_uniform(*, shape, dtype=1, high=1.0, low=0.0, seed=None):
    return _uniform(_rng(seed), shape, _out_dtype(dtype), low, high)


@register("RandomNormal", since=1, foldable=False)
def random_normal(*, shape, dtype=1, mean=0.0, scale=1.0, seed=None):
    return _normal(_rng(seed), shape, _out_dtype(dtype), mean, scale)


@register("RandomUniformLike", since=1, foldable=False)
def random_uniform_like(input, *, dtype=None, high=1.0, low=0.0, seed=None):
    return _uniform(_rng(seed), input.shape, _out_dtype(dtype, input), low, high)


@register("RandomNormalLike", since=1, foldable=False)
def random_normal_like(input, *, dtype=None, mean=0.0, scale=1.0, seed=None):
    return _normal(_rng(seed), input.shape, _out_dtype(dtype, input), mean, scale)


@register("Bernoulli", since=15, foldable=False)
def bernoulli(input, *, dtype=None, seed=None):
    """1 with probability ``input`` (elementwise), else 0."""
    draws = _rng(seed).random(input.shape, dtype=np.float64)
    return (draws < input).astype(_out_dtype(dtype, input))


@register("Multinomial", since=7, foldable=False)
def multinomial(input, *, dtype=6, sample_size=1, seed=None):
    """Samples ``[batch, sample_size]`` class indices from unnormalised log-probabilities."""
    logits = input.astype(np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    u = _rng(seed).random((input.shape[0], int(sample_size)))
    idx = (u[:, :, None] >= cdf[:, None, :]).sum(axis=-1)
    return np.minimum(idx, input.shape[1] - 1).astype(_out_dtype(dtype))
