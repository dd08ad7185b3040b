"""Linear quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear."""

from __future__ import annotations

import ml_dtypes
import numpy as np
from onnx.helper import tensor_dtype_to_np_dtype

from ..registry import register

_INT_RANGES: dict[np.dtype, tuple[int, int]] = {
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.uint16): (0, 65535),
    np.dtype(np.int16): (-32768, 32767),
    np.dtype(ml_dtypes.uint4): (0, 15),
    np.dtype(ml_dtypes.int4): (-8, 7),
    np.dtype(ml_dtypes.uint2): (0, 3),
    np.dtype(ml_dtypes.int2): (-2, 1),
}
_FLOAT8 = {
    np.dtype(ml_dtypes.float8_e4m3fn),
    np.dtype(ml_dtypes.float8_e4m3fnuz),
    np.dtype(ml_dtypes.float8_e5m2),
    np.dtype(ml_dtypes.float8_e5m2fnuz),
}


def _expand(value: np.ndarray, shape: tuple[int, ...], axis: int, block_size: int) -> np.ndarray:
    """Reshape a scale / zero point so that it broadcasts against an input of ``shape``."""
    value = np.asarray(value)
    if value.ndim == 0 or value.size == 1 and not block_size:
        return value.reshape(())
    axis = axis + len(shape) if axis < 0 else axis
    if not block_size:
        dims = [1] * len(shape)
        dims[axis] = value.size
        return value.reshape(dims)
    value = np.repeat(value, block_size, axis=axis)
    if value.shape[axis] != shape[axis]:
        value = np.take(value, np.arange(shape[axis]), axis=axis)
    return value


def _quantize(
    x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int, saturate: int,
    block_size: int, output_dtype: int, precision: int = 0,
) -> np.ndarray:
    x = np.asarray(x)
    scale = _expand(scale, x.shape, axis, block_size)
    if zero_point is not None:
        zero_point = np.asarray(zero_point)
        dtype = zero_point.dtype
        zero_point = _expand(zero_point, x.shape, axis, block_size)
    elif output_dtype:
        dtype = np.dtype(tensor_dtype_to_np_dtype(output_dtype))
    else:
        dtype = np.dtype(np.uint8)
    if precision:
        p = tensor_dtype_to_np_dtype(precision)
        q = x.astype(p) / scale.astype(p)
    else:
        q = x / scale
    if dtype in _INT_RANGES:
        lo, hi = _INT_RANGES[dtype]
        q = np.rint(q)
        if zero_point is not None:
            q = q + zero_point.astype(np.float32)
        return np.clip(q, lo, hi).astype(dtype)
    if dtype in _FLOAT8:
        if saturate:
            info = ml_dtypes.finfo(dtype)
            q = np.clip(q, float(info.min), float(info.max))
        return q.astype(dtype)
    if zero_point is not None:
        q = q + zero_point.astype(np.float32)
    return q.astype(dtype)


@register("QuantizeLinear", since=10)
def quantize_linear_10(x, y_scale, y_zero_point=None):
    return _quantize(x, y_scale, y_zero_point, 1, 1, 0, 0)


@register("QuantizeLinear", since=13)
def quantize_linear_13(x, y_scale, y_zero_point=None, *, axis=1):
    return _quantize(x, y_scale, y_zero_point, axis, 1, 0, 0)


@register("QuantizeLinear", since=19)
def quantize_linear_19(x, y_scale, y_zero_point=None, *, axis=1, saturate=1):
    return _quantize(x, y_scale, y_zero_point, axis, saturate, 0, 0)


@register("QuantizeLinear", since=21)
def quantize_linear_21(
    x, y_scale, y_zero_point=None, *, axis=1, saturate=1, block_size=0, output_dtype=0
):
    return _quantize(x, y_scale, y_zero_point, axis, saturate, block_size, output_dtype)


@register("QuantizeLinear", since=23)
def quantize_linear_23(
    x, y_scale, y_zero_point=None, *, axis=1, saturate=1, block_size=0, output_dtype=0,
    precision=0,
):
    return _quantize(
        x, y_scale, y_zero_point, axis, saturate, block_size, output_dtype, precision
    )


def _dequantize(
    x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int,
    block_size: int, output_dtype: int,
) -> np.ndarray:
    x = np.asarray(x)
    scale = np.asarray(scale)
    out = np.dtype(tensor_dtype_to_np_dtype(output_dtype)) if output_dtype else scale.dtype
    work = np.float64 if out == np.float64 else np.float32
    dx = x.astype(work)
    if zero_point is not None and np.dtype(zero_point.dtype) not in _FLOAT8:
        dx -= _expand(zero_point, x.shape, axis, block_size).astype(work)
    dx *= _expand(scale, x.shape, axis, block_size).astype(work)
    return dx.astype(out, copy=False)


@register("DequantizeLinear", since=10)
def dequantize_linear_10(x, x_scale, x_zero_point=None):
    return _dequantize(x, x_scale, x_zero_point, 1, 0, 0)


@register("DequantizeLinear", since=13)
def dequantize_linear_13(x, x_scale, x_zero_point=None, *, axis=1):
    return _dequantize(x, x_scale, x_zero_point, axis, 0, 0)


@register("DequantizeLinear", since=21)
def dequantize_linear_21(x, x_scale, x_zero_point=None, *, axis=1, block_size=0):
    return _dequantize(x, x_scale, x_zero_point, axis, block_size, 0)


@register("DequantizeLinear", since=23)
def dequantize_linear_23(
    x, x_scale, x_zero_point=None, *, axis=1, block_size=0, output_dtype=0
):
    return _dequantize(x, x_scale, x_zero_point, axis, block_size, output_dtype)


@register("DynamicQuantizeLinear", since=11)
def dynamic_quantize_linear(x):
    """uint8 asymmetric quantization with the range [min(x, 0), max(x, 0)]."""
    x = np.asarray(x, dtype=np.float32)
    lo = min(float(x.min(initial=0.0)), 0.0)
    hi = max(float(x.max(initial=0.0)), 0.0)
    scale = np.float32((hi - lo) / 255.0)
    if scale == 0:
        zp = np.float32(0)
        y = np.zeros(x.shape, np.uint8)
    else:
        zp = np.clip(np.rint(np.float32(0 - lo) / scale), 0, 255)
        y = np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.uint8)
    return y, np.asarray(scale, np.float32), np.asarray(zp, np.uint8)
