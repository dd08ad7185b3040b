"""Gather and scatter: Gather*, Scatter*, TensorScatter, Compress, NonZero, ReverseSequence."""

from __future__ import annotations

import numpy as np

from ..registry import register

_REDUCE = {
    "add": np.add,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
}


def _assign(out: np.ndarray, index: tuple, updates: np.ndarray, reduction: str) -> np.ndarray:
    """``out[index] (op)= updates``; reductions accumulate over duplicate indices."""
    if reduction == "none":
        out[index] = updates
    else:
        _REDUCE[reduction].at(out, index, updates)
    return out


@register("Gather", since=1)
def gather(data, indices, *, axis=0):
    return np.take(data, indices.astype(np.intp, copy=False), axis=axis)


@register("GatherElements", since=11)
def gather_elements(data, indices, *, axis=0):
    if indices.shape != data.shape and indices.ndim == data.ndim:
        # The spec lets indices be smaller than data outside ``axis`` (not larger: no broadcast)
        axis %= data.ndim
        pairs = enumerate(zip(indices.shape, data.shape, strict=True))
        if any(i > d for k, (i, d) in pairs if k != axis):
            raise ValueError(f"indices shape {indices.shape} exceeds data shape {data.shape} "
                             f"outside axis {axis}")
        data = data[tuple(slice(None) if k == axis else slice(0, n)
                          for k, n in enumerate(indices.shape))]
    return np.take_along_axis(data, indices.astype(np.intp, copy=False), axis=axis)


@register("GatherND", since=11)
def gather_nd(data, indices, *, batch_dims=0):
    k = indices.shape[-1]
    batch = data.shape[:batch_dims]
    n_batch = int(np.prod(batch, dtype=np.int64))
    idx = indices.reshape(n_batch, -1, k)
    flat = data.reshape(n_batch, *data.shape[batch_dims:])
    rows = np.arange(n_batch)[:, None]
    picked = flat[(rows, *(idx[..., i] for i in range(k)))]
    return picked.reshape(*indices.shape[:-1], *data.shape[batch_dims + k:])


def _element_index(indices: np.ndarray, axis: int) -> tuple:
    """A fancy index that addresses ``indices`` along ``axis`` and its own position elsewhere."""
    grids: list[np.ndarray] = list(np.indices(indices.shape, sparse=True))
    grids[axis] = indices
    return tuple(grids)


def _scatter_elements(data, indices, updates, axis: int, reduction: str) -> np.ndarray:
    axis = axis % data.ndim
    out = data.copy()
    return _assign(out, _element_index(indices, axis), updates, reduction)


@register("Scatter", since=9)
def scatter(data, indices, updates, *, axis=0):
    return _scatter_elements(data, indices, updates, axis, "none")


@register("ScatterElements", since=11)
def scatter_elements(data, indices, updates, *, axis=0, reduction="none"):
    return _scatter_elements(data, indices, updates, axis, reduction)


@register("ScatterND", since=11)
def scatter_nd(data, indices, updates, *, reduction="none"):
    out = data.copy()
    index = tuple(indices[..., i] for i in range(indices.shape[-1]))
    return _assign(out, index, updates, reduction)


@register("TensorScatter", since=24)
def tensor_scatter(past_cache, update, write_indices=None, *, axis=-2, mode="linear"):
    """Write ``update`` into the cache along ``axis`` at a per-batch (dim 0) offset."""
    axis = axis % past_cache.ndim
    out = past_cache.copy()
    if write_indices is None:
        write_indices = np.zeros(past_cache.shape[0], dtype=np.int64)
    positions = write_indices.reshape(-1, 1) + np.arange(update.shape[axis])
    if mode == "circular":
        positions %= past_cache.shape[axis]
    shape = [1] * past_cache.ndim
    shape[0], shape[axis] = positions.shape
    np.put_along_axis(out, positions.reshape(shape), update, axis=axis)
    return out


@register("Compress", since=9)
def compress(x, condition, *, axis=None):
    return np.compress(condition.reshape(-1), x, axis=axis)


@register("NonZero", since=9)
def nonzero(x):
    if x.ndim == 0:
        return np.zeros((0, int(bool(x))), dtype=np.int64)
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


@register("ReverseSequence", since=10)
def reverse_sequence(input, sequence_lens, *, batch_axis=1, time_axis=0):
    """Reverse the first ``sequence_lens[b]`` steps along ``time_axis`` of each batch entry."""
    steps = np.arange(input.shape[time_axis]).reshape(-1, 1)  # (time, batch)
    lens = sequence_lens.astype(np.int64).reshape(1, -1)
    source = np.where(steps < lens, lens - 1 - steps, steps)
    if batch_axis < time_axis:
        source = source.T
    shape = [1] * input.ndim
    shape[time_axis], shape[batch_axis] = input.shape[time_axis], input.shape[batch_axis]
    return np.take_along_axis(input, source.reshape(shape), axis=time_axis)
