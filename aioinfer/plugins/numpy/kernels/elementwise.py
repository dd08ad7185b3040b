"""Element-wise math: unary functions, binary arithmetic (Add Sub Mul Div Pow Mod), Identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ..registry import register

# --- erf ------------------------------------------------------------------------------------
# float64: Cephes (ndtr.c) rational approximations, erf(x) = x T(x^2) / U(x^2) for |x| <= 1 and
# erf(x) = 1 - exp(-x^2) P(x) / Q(x) for 1 < x < 6 (erf is 1.0 in double beyond ~6).
_ERF_T = (9.60497373987051638749e0, 9.00260197203842689217e1, 2.23200534594684319226e3,
          7.00332514112805075473e3, 5.55923013010394962768e4)
_ERF_U = (1.0, 3.35617141647503099647e1, 5.21357949780152679795e2, 4.59432382970980127987e3,
          2.26290000613890934246e4, 4.92673942608635921086e4)
_ERFC_P = (2.46196981473530512524e-10, 5.64189564831068821977e-1, 7.46321056442269912687e0,
           4.86371970985681366614e1, 1.96520832956077098242e2, 5.26445194995477358631e2,
           9.34528527171957607540e2, 1.02755188689515710272e3, 5.57535335369399327526e2)
_ERFC_Q = (1.0, 1.32281951154744992508e1, 8.67072140885989742329e1, 3.54937778887819891062e2,
           9.75708501743205489753e2, 1.82390916687909736289e3, 2.24633760818710981792e3,
           1.65666309194161350182e3, 5.57535340817727675546e2)
# float32 and narrower: the single-precision rational erf(x) = x A(x^2) / B(x^2) on [-4, 4] (as in
# Eigen and XLA), evaluated in float32: within ~5e-7 relative of exact.
_ERF_A = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
          -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
          -1.60960333262415e-02)
_ERF_B = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
          -7.37332916720468e-03, -1.42647390514189e-02)

FloatArray = npt.NDArray[np.floating[Any]]


def polyval(coeffs: tuple[float, ...], x: FloatArray, out: FloatArray | None = None
             ) -> FloatArray:
    """Horner evaluation in ``x``'s dtype, highest-order coefficient first, into ``out``.

    A leading coefficient of exactly 1 (a monic polynomial) saves one pass.
    """
    if coeffs[0] == 1.0:
        acc = np.add(x, coeffs[1], out=out)
    else:
        acc = np.multiply(x, coeffs[0], out=out)
        acc += coeffs[1]
    for c in coeffs[2:]:
        acc *= x
        acc += c
    return acc


def erf_rational(scale: float = 1.0, factor: float = 1.0
                 ) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """(clamp, N, D) with ``factor * erf(scale * x) = x N(x^2) / D(x^2)`` for |x| <= clamp.

    The float32 rational approximation rescaled to ``scale * x``, with ``factor`` folded into N
    and D made monic, so that callers such as Gelu need no extra passes.
    """
    s2 = scale * scale
    n_a, n_b = len(_ERF_A) - 1, len(_ERF_B) - 1
    lead = _ERF_B[0] * s2**n_b
    den = tuple(b * s2 ** (n_b - i) / lead for i, b in enumerate(_ERF_B))
    num = tuple(a * s2 ** (n_a - i) * scale * factor / lead for i, a in enumerate(_ERF_A))
    return 4.0 / scale, num, den


_ERF32 = erf_rational()


def _erf_double(x: FloatArray) -> FloatArray:
    ax = np.minimum(np.abs(x), 6.0)
    small = ax <= 1.0
    z = np.where(small, ax * ax, 0.0)
    inner = ax * polyval(_ERF_T, z)
    inner /= polyval(_ERF_U, z)
    t = np.where(small, 1.0, ax)
    outer = np.exp(-t * t) * polyval(_ERFC_P, t)
    outer /= polyval(_ERFC_Q, t)
    res = np.where(small, inner, 1.0 - outer)
    np.copysign(res, x, out=res)
    res[np.isnan(x)] = np.nan
    return res


def _erf_single(x: FloatArray, out: FloatArray, s1: FloatArray, s2: FloatArray) -> None:
    """erf(x) into ``out`` in float32 (blocks: ``s1``, ``s2`` are same-size scratch)."""
    clamp, num_c, den_c = _ERF32
    xc = np.clip(x, -clamp, clamp, out=s1)
    x2 = np.multiply(xc, xc, out=s2)
    num = polyval(num_c, x2, out=out)
    num *= xc
    den = polyval(den_c, x2, out=s1)  # xc is used up
    np.divide(num, den, out=out)
    np.clip(out, -1.0, 1.0, out=out)  # the approximation overshoots by an ulp near |x| = 4


_CHUNK = 1 << 16  # elements per block: the four buffers stay in a 1 MiB L2
BlockFn = Callable[[FloatArray, FloatArray, FloatArray, FloatArray], object]


def blockwise(fn: BlockFn, x: FloatArray) -> FloatArray:
    """``fn(block, out_block, scratch1, scratch2)`` over cache-sized blocks of ``x``.

    A loop over blocks, not elements: numpy's passes then run on cache-resident data.
    Narrow floats (float16, bfloat16) are computed in float32 and converted back.
    """
    work = x.astype(np.float32, copy=False) if x.dtype != np.float32 else x
    # in memory order: a column-major input (a swapped product's) is not copied
    order = "F" if work.flags.f_contiguous and not work.flags.c_contiguous else "C"
    flat = work.reshape(-1, order=order)
    out = np.empty(flat.shape, dtype=np.float32)
    n = min(flat.size, _CHUNK)
    s1, s2 = np.empty(n, dtype=np.float32), np.empty(n, dtype=np.float32)
    for start in range(0, flat.size, _CHUNK):
        stop = min(start + _CHUNK, flat.size)
        k = stop - start
        fn(flat[start:stop], out[start:stop], s1[:k], s2[:k])
    return out.reshape(x.shape, order=order).astype(x.dtype, copy=False)


def erf(x: npt.ArrayLike) -> FloatArray:
    """Vectorised erf in ``x``'s dtype: double-accurate for float64, ~5e-7 relative otherwise."""
    x = np.asarray(x)
    if x.dtype == np.float64:
        return np.asarray(_erf_double(x.reshape(-1))).reshape(x.shape)
    return blockwise(_erf_single, x)


# --- unary ----------------------------------------------------------------------------------


def _register_unary(op: str, fn: Callable[[np.ndarray], Any], first: int) -> None:
    """Register ``fn`` for ``op``; ops born at opset 1 also get the legacy consumed_inputs form."""
    if first == 1:

        def legacy(x, *, consumed_inputs=None):
            return fn(x)

        register(op, since=1)(legacy)
        register(op, since=6)(fn)
    else:
        register(op, since=first)(fn)


def _ufunc_kernel(ufunc: np.ufunc) -> Callable[[np.ndarray], np.ndarray]:
    def kernel(x):
        return ufunc(x, out=...)  # out=... keeps 0-d results arrays, not numpy scalars

    kernel.__name__ = ufunc.__name__
    return kernel


def _abs(x: np.ndarray) -> np.ndarray:
    return np.abs(x, out=...) if x.dtype.kind != "u" else x


def _sign(x: np.ndarray) -> np.ndarray:
    return np.sign(x, out=...) if x.dtype != np.bool_ else x


def _reciprocal(x: np.ndarray) -> np.ndarray:
    return np.reciprocal(x, out=...)


_UNARY: dict[str, tuple[Callable[[np.ndarray], Any], int]] = {
    "Abs": (_abs, 1),
    "Acos": (_ufunc_kernel(np.arccos), 7),
    "Acosh": (_ufunc_kernel(np.arccosh), 9),
    "Asin": (_ufunc_kernel(np.arcsin), 7),
    "Asinh": (_ufunc_kernel(np.arcsinh), 9),
    "Atan": (_ufunc_kernel(np.arctan), 7),
    "Atanh": (_ufunc_kernel(np.arctanh), 9),
    "Ceil": (_ufunc_kernel(np.ceil), 1),
    "Cos": (_ufunc_kernel(np.cos), 7),
    "Cosh": (_ufunc_kernel(np.cosh), 9),
    "Erf": (erf, 9),
    "Exp": (_ufunc_kernel(np.exp), 1),
    "Floor": (_ufunc_kernel(np.floor), 1),
    "Log": (_ufunc_kernel(np.log), 1),
    "Neg": (_ufunc_kernel(np.negative), 1),
    "Reciprocal": (_reciprocal, 1),
    "Round": (_ufunc_kernel(np.rint), 11),  # round half to even, as ONNX specifies
    "Sign": (_sign, 9),
    "Sin": (_ufunc_kernel(np.sin), 7),
    "Sinh": (_ufunc_kernel(np.sinh), 9),
    "Sqrt": (_ufunc_kernel(np.sqrt), 1),
    "Tan": (_ufunc_kernel(np.tan), 7),
    "Tanh": (_ufunc_kernel(np.tanh), 1),
}

for _op, (_unary, _first) in _UNARY.items():
    _register_unary(_op, _unary, _first)


@register("Identity", since=1)
def identity(x):
    return x


# --- binary arithmetic ----------------------------------------------------------------------


def legacy_broadcast(a: np.ndarray, b: np.ndarray, broadcast: int, axis: int | None) -> np.ndarray:
    """Align ``b`` to ``a`` the pre-opset-7 way: ``b``'s dims start at ``axis`` of ``a``."""
    if not broadcast or axis is None or b.ndim == 0:
        return b
    axis = axis % a.ndim if a.ndim else 0
    trailing = a.ndim - axis - b.ndim
    return b.reshape(b.shape + (1,) * trailing) if trailing > 0 else b


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division truncating toward zero, like C."""
    if a.dtype.kind == "u":
        return np.floor_divide(a, b, out=...)
    with np.errstate(divide="ignore", invalid="ignore"):
        rem = np.fmod(a, b)
        return np.floor_divide(a - rem, b, out=...)


def add(a, b):
    return np.add(a, b, out=...)


def sub(a, b):
    return np.subtract(a, b, out=...)


def mul(a, b):
    return np.multiply(a, b, out=...)


def div(a, b):
    if a.dtype.kind in "iu":
        return _int_div(a, b)
    return np.divide(a, b, out=...)


def pow_(a, b):
    """ONNX Pow: the output has the base's type whatever the exponent's type."""
    if a.dtype.kind in "iu":
        if b.dtype.kind in "iu" and not (b < 0).any():
            return np.power(a, b.astype(a.dtype, copy=False), out=...)
        return np.power(a.astype(np.float64), b, out=...).astype(a.dtype)
    return np.power(a, b.astype(a.dtype, copy=False), out=...)


def _register_binary(op: str, fn: Callable[[Any, Any], Any]) -> None:
    def legacy(a, b, *, axis=None, broadcast=0, consumed_inputs=None):
        return fn(a, legacy_broadcast(a, b, broadcast, axis))

    register(op, since=1)(legacy)
    register(op, since=7)(fn)


for _op, _binary in {"Add": add, "Sub": sub, "Mul": mul, "Div": div, "Pow": pow_}.items():
    _register_binary(_op, _binary)


@register("Mod", since=10)
def mod(a, b, *, fmod=0):
    if fmod:
        return np.fmod(a, b, out=...)
    return np.mod(a, b, out=...)


# --- variadic -------------------------------------------------------------------------------


def _fold(ufunc: np.ufunc, xs: tuple[np.ndarray, ...]) -> np.ndarray:
    if len(xs) == 1:
        return xs[0]
    out = ufunc(xs[0], xs[1], out=...)
    for x in xs[2:]:
        if np.broadcast_shapes(out.shape, x.shape) == out.shape:
            ufunc(out, x, out=out)
        else:
            out = ufunc(out, x)
    return out


def max_(*xs):
    return _fold(np.maximum, xs)


def min_(*xs):
    return _fold(np.minimum, xs)


def sum_(*xs):
    return _fold(np.add, xs)


def mean(*xs):
    total = _fold(np.add, xs)
    if len(xs) == 1:
        return total
    if total.dtype.kind in "iu":
        return np.floor_divide(total, len(xs), out=...)
    total /= len(xs)
    return total


def _register_variadic(op: str, fn: Callable[..., Any]) -> None:
    def legacy(*xs, consumed_inputs=None):
        return fn(*xs)

    register(op, since=1)(legacy)
    register(op, since=6)(fn)


for _op, _variadic in {"Max": max_, "Min": min_, "Sum": sum_, "Mean": mean}.items():
    _register_variadic(_op, _variadic)


# --- Clip -----------------------------------------------------------------------------------

_F32_MAX = float(np.finfo(np.float32).max)


@register("Clip", since=1)
def clip_1(x, *, min=-_F32_MAX, max=_F32_MAX, consumed_inputs=None):  # noqa: A002
    return clip_6(x, min=min, max=max)


@register("Clip", since=6)
def clip_6(x, *, min=-_F32_MAX, max=_F32_MAX):  # noqa: A002
    return np.clip(x, min, max, out=...)


@register("Clip", since=11)
def clip(x, lo=None, hi=None):
    if lo is not None and hi is not None:
        return np.clip(x, lo.astype(x.dtype, copy=False), hi.astype(x.dtype, copy=False),
                       out=...)
    if lo is not None:
        x = np.maximum(x, lo.astype(x.dtype, copy=False), out=...)
    if hi is not None:
        x = np.minimum(x, hi.astype(x.dtype, copy=False), out=...)
    return x
