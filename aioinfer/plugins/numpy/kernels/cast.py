"""Cast, CastLike and BitCast over every ONNX dtype (exotic ones through ml_dtypes)."""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np
import onnx

from ..registry import register

_TP = onnx.TensorProto
_FLOAT8 = frozenset(
    np.dtype(t)
    for t in (
        ml_dtypes.float8_e4m3fn,
        ml_dtypes.float8_e4m3fnuz,
        ml_dtypes.float8_e5m2,
        ml_dtypes.float8_e5m2fnuz,
    )
)
_E8M0 = np.dtype(ml_dtypes.float8_e8m0fnu)
_STRING = np.dtype(object)


@functools.cache
def onnx_to_numpy_dtype(to: int | str) -> np.dtype:
    """The numpy dtype of an ONNX ``TensorProto.DataType`` (a name for opset-1 Cast)."""
    if isinstance(to, str):
        to = _TP.DataType.Value(to.upper())
    if to == _TP.STRING:
        return _STRING
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(to))


def _to_e8m0(x: np.ndarray, saturate: bool, round_mode: str) -> np.ndarray:
    """float -> float8e8m0 (a bare power-of-two exponent), rounding on the float32 bits."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    exponent = ((bits >> 23) & 0xFF).astype(np.uint16)
    special = exponent == 0xFF
    if round_mode == "up":
        round_up = (bits & 0x7FFFFF) != 0
    elif round_mode == "nearest":
        guard = (bits & 0x400000) != 0
        rest = (bits & 0x3FFFFF) != 0
        round_up = guard & (rest | (exponent > 0))
    elif round_mode == "down":
        round_up = np.zeros(bits.shape, dtype=np.bool_)
    else:
        raise ValueError(f"Cast round_mode must be up, down or nearest, got {round_mode!r}")
    round_up &= ~special
    if saturate:
        round_up &= exponent != 0xFE
    exponent += round_up
    exponent[special] = 0xFF
    return exponent.astype(np.uint8).view(_E8M0)


def _from_strings(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "iu":
        try:
            return x.astype(dtype)
        except ValueError:  # "1e3", "2.5": parse as float first
            pass
    if dtype == np.bool_:
        return x.astype(np.float64).astype(np.bool_)
    return x.astype(np.float64).astype(dtype)


def _to_strings(x: np.ndarray) -> np.ndarray:
    if x.dtype.kind == "f" or x.dtype.kind == "V":
        x = x.astype(np.float32) if x.dtype.kind == "V" else x
    return x.astype(np.str_).astype(object)


def cast_to(x: np.ndarray, dtype: np.dtype, saturate: int = 1, round_mode: str = "up"):
    """Convert ``x`` to ``dtype`` with ONNX Cast semantics."""
    if x.dtype == dtype:
        return x
    if dtype == _STRING:
        return _to_strings(x)
    if x.dtype == _STRING:
        return _from_strings(x, dtype)
    if dtype in _FLOAT8:
        if x.dtype.kind in "iub":
            x = x.astype(np.float32)
        if saturate:
            info = ml_dtypes.finfo(dtype)
            x = np.clip(x, float(info.min), float(info.max))
        return x.astype(dtype)
    if dtype == _E8M0:
        return _to_e8m0(x, bool(saturate), round_mode)
    return x.astype(dtype)


@register("Cast", since=1)
def cast(x, *, to):
    return cast_to(x, onnx_to_numpy_dtype(to))


@register("Cast", since=19)
def cast_19(x, *, to, saturate=1):
    return cast_to(x, onnx_to_numpy_dtype(to), saturate)


@register("Cast", since=24)
def cast_24(x, *, to, saturate=1, round_mode="up"):
    return cast_to(x, onnx_to_numpy_dtype(to), saturate, round_mode)


@register("CastLike", since=15)
def cast_like(x, like):
    return cast_to(x, like.dtype)


@register("CastLike", since=19)
def cast_like_19(x, like, *, saturate=1):
    return cast_to(x, like.dtype, saturate)


@register("CastLike", since=24)
def cast_like_24(x, like, *, saturate=1, round_mode="up"):
    return cast_to(x, like.dtype, saturate, round_mode)


@register("BitCast", since=26)
def bit_cast(x, *, to):
    """Reinterpret the bytes; same bit width only, little endian."""
    dtype = onnx_to_numpy_dtype(to)
    if dtype.itemsize != x.dtype.itemsize:
        raise ValueError(f"BitCast needs equal bit widths, got {x.dtype} -> {dtype}")
    if not x.flags.c_contiguous:
        x = x.copy()
    return x.view(dtype)
