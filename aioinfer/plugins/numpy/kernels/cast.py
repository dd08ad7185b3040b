"""Cast, CastLike and BitCast over every ONNX dtype (exotic ones through ml_dtypes)."""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np
import numpy.typing as npt
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
    code = int(_TP.DataType.Value(to.upper())) if isinstance(to, str) else to
    if code == _TP.STRING:
        return _STRING
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(code))


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


# --- float32 -> float16 ----------------------------------------------------------------------
# numpy's float32 -> float16 astype is a scalar software loop (~3 ns an element); this bit-level
# version runs a few cache-resident passes per block and is bit-identical to it (checked on all
# 2^32 float32 bit patterns), NaN payloads included.
_F16_BLOCK = 1 << 16
_F16_MIN_SIZE = 1 << 12  # below this numpy's loop is as fast
# An array, not a scalar: numpy's minimum with a scalar operand is not vectorised (~4x slower).
_F16_INF = np.full(_F16_BLOCK, 0x7C00, dtype=np.uint32)
_F16_TINY = 0x38800000  # float32 bits of 2**-14, the smallest normal float16


def _f16_block(b: npt.NDArray[np.uint32], a: npt.NDArray[np.uint32],
               t: npt.NDArray[np.uint32], s: npt.NDArray[np.uint32],
               m: npt.NDArray[np.bool_], out: npt.NDArray[np.uint16]) -> None:
    """float32 bits ``b`` -> float16 bits ``out``, rounding to nearest even; a t s m scratch."""
    np.bitwise_and(b, 0x7FFFFFFF, out=a)
    # Normal: rebias the exponent (127 -> 15) and round off 13 mantissa bits, ties to even;
    # a carry out of the mantissa bumps the exponent, past 65504 up to inf (then clamped).
    np.right_shift(a, 13, out=t)
    t &= 1
    t += a
    t += 0xC8000FFF  # 0xFFF - (112 << 23), modulo 2**32
    t >>= 13
    np.minimum(t, _F16_INF[: t.size], out=t)
    # Subnormal: adding 0.5 in float32 leaves |x| * 2**24 rounded to even in the low bits.
    np.add(a.view(np.float32), 0.5, out=s.view(np.float32))
    s -= 0x3F000000
    np.less(a, _F16_TINY, out=m)
    np.copyto(t, s, where=m)
    if a.max() > 0x7F800000:  # NaN: numpy keeps the top 10 payload bits, never 0 (not inf)
        np.greater(a, 0x7F800000, out=m)
        payload = (a[m] >> 13) & 0x3FF
        t[m] = 0x7C00 | np.maximum(payload, 1)
    np.right_shift(b, 16, out=s)
    s &= 0x8000
    t |= s
    np.copyto(out, t, casting="unsafe")


def float32_to_float16(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float16]:
    """``x.astype(np.float16)``, bit for bit, several times faster on large arrays."""
    if x.size < _F16_MIN_SIZE:
        return x.astype(np.float16)
    bits = np.ascontiguousarray(x).reshape(-1).view(np.uint32)
    out = np.empty(bits.shape, dtype=np.uint16)
    n = min(bits.size, _F16_BLOCK)
    a, t, s = (np.empty(n, dtype=np.uint32) for _ in range(3))
    m = np.empty(n, dtype=np.bool_)
    with np.errstate(invalid="ignore"):  # signalling NaNs in the float32 add
        for i in range(0, bits.size, _F16_BLOCK):  # cache-sized blocks, not elements
            k = min(_F16_BLOCK, bits.size - i)
            _f16_block(bits[i : i + k], a[:k], t[:k], s[:k], m[:k], out[i : i + k])
    return out.view(np.float16).reshape(x.shape)


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
    if dtype == np.float16 and x.dtype == np.float32:
        return float32_to_float16(x)
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
