"""Matrix products on BLAS: Gemm, MatMul and the integer/quantized MatMulInteger, QLinearMatMul."""

from __future__ import annotations

import numpy as np

from ..registry import register


def is_narrow_float(dtype: np.dtype) -> bool:
    """float16, bfloat16 and other sub-32-bit floats: multiplied in float32 on BLAS instead."""
    return dtype.itemsize < 4 and (dtype.kind == "f" or dtype.kind == "V")


def blas_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in the inputs' dtype; narrow floats accumulate in float32, rounded once."""
    if is_narrow_float(a.dtype):
        f32 = np.float32
        return np.matmul(a.astype(f32), b.astype(f32)).astype(a.dtype)
    return np.matmul(a, b)


@register("Gemm", since=1)
def gemm(a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=1):
    y = blas_matmul(a.T if transA else a, b.T if transB else b)
    if alpha != 1.0:
        y *= y.dtype.type(alpha)
    if c is not None and beta != 0.0:
        y += c if beta == 1.0 else c * c.dtype.type(beta)
    return y


@register("MatMul", since=1)
def matmul(a, b):
    return blas_matmul(a, b)


def _centered(v: np.ndarray, zero_point: np.ndarray | None, row_wise: bool) -> np.ndarray:
    """``v - zero_point`` as float64: exact for 8-bit data, and it runs on BLAS.

    A 1-D zero point is per row of A (``row_wise``) or per column of B.
    """
    out = v.astype(np.float64)
    if zero_point is not None:
        zp = np.asarray(zero_point, dtype=np.float64)
        if row_wise and zp.ndim == 1 and zp.size > 1:
            zp = zp.reshape(-1, 1)
        out -= zp
    return out


@register("MatMulInteger", since=10)
def matmul_integer(a, b, a_zero_point=None, b_zero_point=None):
    acc = np.matmul(_centered(a, a_zero_point, True), _centered(b, b_zero_point, False))
    return acc.astype(np.int32)


def requantize(acc: np.ndarray, scale, zero_point, default_dtype: np.dtype) -> np.ndarray:
    """Round ``acc * scale`` half to even, add the zero point, saturate to its integer type."""
    acc *= scale
    np.rint(acc, out=acc)
    dtype = default_dtype if zero_point is None else zero_point.dtype
    if zero_point is not None:
        acc += zero_point
    info = np.iinfo(dtype)
    return np.clip(acc, info.min, info.max).astype(dtype)


@register("QLinearMatMul", since=10)
def qlinear_matmul(a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
    a_scale = np.asarray(a_scale)
    if a_scale.ndim == 1 and a_scale.size > 1:
        a_scale = a_scale.reshape(-1, 1)
    acc = np.matmul(_centered(a, a_zero_point, True), _centered(b, b_zero_point, False))
    return requantize(acc, a_scale * b_scale / y_scale, y_zero_point, a.dtype)
