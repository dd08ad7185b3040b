"""Shape manipulation: Reshape, Flatten, Transpose, Concat, Split, Slice, (Un)Squeeze, Expand..."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..registry import register


def _ints(values) -> list[int]:
    """An int64 tensor (or list, or None) as a list of Python ints."""
    if values is None:
        return []
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _reshape(data: np.ndarray, shape: list[int], allowzero: int) -> np.ndarray:
    if not allowzero:
        shape = [data.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return data.reshape(shape)


@register("Reshape", since=1)
def reshape_1(data, *, shape=(), consumed_inputs=None):
    return _reshape(data, list(shape), 0)


@register("Reshape", since=5)
def reshape(data, shape, *, allowzero=0):
    return _reshape(data, _ints(shape), allowzero)


@register("Flatten", since=1)
def flatten(x, *, axis=1):
    axis = axis % x.ndim if x.ndim and axis < 0 else axis
    return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))


@register("Transpose", since=1)
def transpose(data, *, perm=None):
    return np.transpose(data, perm)


@register("Concat", since=1)
def concat(*inputs, axis=1):
    return np.concatenate(inputs, axis=axis)


def _split_sizes(dim: int, split: Sequence[int] | None, n: int) -> list[int]:
    if split is not None and len(split):
        return list(split)
    if dim % n == 0:
        return [dim // n] * n
    chunk = -(-dim // n)  # opset 18 num_outputs: ceil-sized chunks, the last one smaller
    return [chunk] * (dim // chunk) + ([dim % chunk] if dim % chunk else [])


def _split(x: np.ndarray, sizes: list[int], axis: int) -> tuple[np.ndarray, ...]:
    bounds = np.cumsum(sizes)[:-1]
    return tuple(np.split(x, bounds, axis=axis))


@register("Split", since=1)
def split_1(x, split_input=None, *, axis=0, split=None, n_outputs):
    sizes = split if split else _ints(split_input) or None
    return _split(x, _split_sizes(x.shape[axis], sizes, n_outputs), axis)


@register("Split", since=2)
def split_2(x, *, axis=0, split=None, n_outputs):
    return _split(x, _split_sizes(x.shape[axis], split, n_outputs), axis)


@register("Split", since=13)
def split_13(x, split=None, *, axis=0, n_outputs):
    return _split(x, _split_sizes(x.shape[axis], _ints(split) or None, n_outputs), axis)


@register("Split", since=18)
def split_18(x, split=None, *, axis=0, num_outputs=None, n_outputs):
    return split_13(x, split, axis=axis, n_outputs=num_outputs or n_outputs)


def _slice(data, starts, ends, axes, steps) -> np.ndarray:
    starts, ends = _ints(starts), _ints(ends)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        dim = data.shape[axis]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
        index[axis] = slice(start, None if end < 0 else end, step)
    return data[tuple(index)]


@register("Slice", since=1)
def slice_1(data, *, starts, ends, axes=None):
    return _slice(data, starts, ends, axes, None)


@register("Slice", since=10)
def slice_10(data, starts, ends, axes=None, steps=None):
    return _slice(data, starts, ends, axes, steps)


def _squeeze(data: np.ndarray, axes) -> np.ndarray:
    if axes is None or not len(axes):
        return np.squeeze(data)
    return np.squeeze(data, axis=tuple(a % data.ndim for a in axes))


@register("Squeeze", since=1)
def squeeze_1(data, *, axes=None):
    return _squeeze(data, axes)


@register("Squeeze", since=13)
def squeeze(data, axes=None):
    return _squeeze(data, None if axes is None else _ints(axes))


@register("Unsqueeze", since=1)
def unsqueeze_1(data, *, axes):
    return np.expand_dims(data, tuple(axes))


@register("Unsqueeze", since=13)
def unsqueeze(data, axes):
    return np.expand_dims(data, tuple(_ints(axes)))


@register("Expand", since=8)
def expand(x, shape):
    out_shape = np.broadcast_shapes(x.shape, tuple(_ints(shape)))
    return np.broadcast_to(x, out_shape).copy()


@register("Tile", since=6)
def tile(x, repeats):
    return np.tile(x, _ints(repeats))


@register("Shape", since=1)
def shape(data, *, start=0, end=None):
    return np.array(data.shape[start:end], dtype=np.int64)


@register("Size", since=1)
def size(data):
    return np.array(data.size, dtype=np.int64)


@register("DepthToSpace", since=1)
def depth_to_space(x, *, blocksize, mode="DCR"):
    n, c, h, w = x.shape
    b = blocksize
    if mode == "DCR":
        t = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(n, c // (b * b), h * b, w * b)


@register("SpaceToDepth", since=1)
def space_to_depth(x, *, blocksize, mode="DCR"):
    n, c, h, w = x.shape
    b = blocksize
    perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
    t = x.reshape(n, c, h // b, b, w // b, b).transpose(perm)
    return t.reshape(n, c * b * b, h // b, w // b)


@register("Trilu", since=14)
def trilu(x, k=None, *, upper=1):
    k = 0 if k is None else int(k)
    return np.triu(x, k) if upper else np.tril(x, k)
