"""Tensor constructors: Constant, ConstantOfShape, EyeLike, Range, OneHot."""

from __future__ import annotations

import numpy as np
from onnx import helper

from ..registry import register


@register("Constant", since=1)
def constant(
    *,
    value=None,
    sparse_value=None,
    value_float=None,
    value_floats=None,
    value_int=None,
    value_ints=None,
    value_string=None,
    value_strings=None,
):
    if value is not None:
        return value
    if sparse_value is not None:
        return sparse_value
    if value_float is not None:
        return np.array(value_float, dtype=np.float32)
    if value_floats is not None:
        return np.array(value_floats, dtype=np.float32)
    if value_int is not None:
        return np.array(value_int, dtype=np.int64)
    if value_ints is not None:
        return np.array(value_ints, dtype=np.int64)
    if value_string is not None:
        return np.array(value_string, dtype=object)
    if value_strings is not None:
        return np.array(value_strings, dtype=object)
    raise ValueError("Constant has no value attribute")


@register("ConstantOfShape", since=9)
def constant_of_shape(input, *, value=None):
    shape = tuple(int(d) for d in np.asarray(input).reshape(-1))
    if value is None:
        return np.zeros(shape, dtype=np.float32)
    return np.full(shape, value.reshape(-1)[0], dtype=value.dtype)


@register("EyeLike", since=9)
def eye_like(input, *, dtype=None, k=0):
    out_dtype = input.dtype if dtype is None else helper.tensor_dtype_to_np_dtype(dtype)
    return np.eye(input.shape[0], input.shape[1], k=k, dtype=out_dtype)


@register("Range", since=11)
def range_(start, limit, delta, *, stash_type=1):
    dtype = np.asarray(start).dtype
    start, limit, delta = (np.asarray(v).item() for v in (start, limit, delta))
    count = max(int(np.ceil((limit - start) / delta)), 0)
    return (start + np.arange(count, dtype=np.float64 if dtype.kind == "f" else np.int64)
            * delta).astype(dtype, copy=False)


@register("OneHot", since=9)
def one_hot(indices, depth, values, *, axis=-1):
    depth = int(np.asarray(depth).reshape(-1)[0])
    axis = axis % (indices.ndim + 1)
    idx = indices.astype(np.int64)
    idx = np.where(idx < 0, idx + depth, idx)
    classes = np.arange(depth).reshape((depth,) + (1,) * (indices.ndim - axis))
    hot = np.expand_dims(idx, axis) == classes
    off, on = values.reshape(-1)[0], values.reshape(-1)[1]
    return np.where(hot, on, off).astype(values.dtype, copy=False)
