"""``ai.onnx.ml`` lookups and encoders: ArrayFeatureExtractor, Binarizer, LabelEncoder,
CategoryMapper, OneHotEncoder, Imputer, ZipMap.

Numeric key lookups are vectorised with ``searchsorted`` over the sorted keys; string keys go
through a dict (strings have no faster path). Lookup tables are built once per node: they are
memoised on the identity of the attribute objects the compiler bound to the kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..registry import register

ML = "ai.onnx.ml"
_MEMO: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}


def _memo(objs: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """``build()`` once per distinct tuple of (bound attribute) objects, by identity."""
    key = tuple(id(o) for o in objs)
    hit = _MEMO.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], objs, strict=True)):
        return hit[1]
    if len(_MEMO) > 512:
        _MEMO.clear()
    value = build()
    _MEMO[key] = (objs, value)
    return value


def _is_text(values: Any) -> bool:
    arr = np.asarray(values)
    return arr.dtype == object or arr.dtype.kind in "US"


def _lookup_fn(keys: Any, values: Any, default: Any, dtype: Any) -> Callable:
    """A function mapping an array through ``keys -> values`` with ``default`` for misses."""
    dtype = np.dtype(dtype)
    if _is_text(keys):
        names = [k.decode() if isinstance(k, bytes) else k for k in keys]
        table = dict(zip(names, list(values), strict=True))

        def by_dict(x: np.ndarray) -> np.ndarray:
            flat = [table.get(v, default) for v in x.ravel().tolist()]
            return np.array(flat, dtype=dtype).reshape(x.shape)

        return by_dict
    karr = np.asarray(keys)
    order = np.argsort(karr, kind="stable")
    sorted_keys = karr[order]
    sorted_vals = np.asarray(values, dtype=dtype)[order]
    fill = np.asarray(default, dtype=dtype)

    def by_search(x: np.ndarray) -> np.ndarray:
        idx = np.minimum(np.searchsorted(sorted_keys, x), len(sorted_keys) - 1)
        hit = sorted_keys[idx]
        found = hit == x
        if hit.dtype.kind == "f":
            found |= np.isnan(hit) & np.isnan(x)
        return np.where(found, sorted_vals[idx], fill)

    return by_search


@register("ArrayFeatureExtractor", since=1, domain=ML)
def array_feature_extractor(x, y):
    """Selects ``x[..., y]`` along the last axis; a 1-D ``x`` gives a ``[1, k]`` result."""
    out = x[..., y.ravel()]
    return out.reshape(1, -1) if x.ndim == 1 else out


@register("Binarizer", since=1, domain=ML)
def binarizer(x, *, threshold=0.0):
    return (x > x.dtype.type(threshold)).astype(x.dtype)


@register("LabelEncoder", since=1, domain=ML)
def label_encoder_1(x, *, classes_strings=(), default_int64=-1, default_string="_Unused"):
    """Strings -> their index in ``classes_strings``, or int64 indices -> strings."""
    if _is_text(x):
        fn = _memo((classes_strings,), lambda: _lookup_fn(
            classes_strings, range(len(classes_strings)), default_int64, np.int64))
    else:
        fn = _memo((classes_strings,), lambda: _lookup_fn(
            range(len(classes_strings)), classes_strings, default_string, object))
    return fn(x)


def _typed_default(values: np.ndarray) -> Any:
    if _is_text(values):
        return "_Unused"
    return -1 if values.dtype.kind in "iub" else -0.0


@register("LabelEncoder", since=2, domain=ML)
def label_encoder(
    x, *, keys_floats=None, keys_int64s=None, keys_strings=None, keys_tensor=None,
    values_floats=None, values_int64s=None, values_strings=None, values_tensor=None,
    default_float=-0.0, default_int64=-1, default_string="_Unused", default_tensor=None,
):
    keys = next(k for k in (keys_floats, keys_int64s, keys_strings, keys_tensor) if k is not None)
    if values_tensor is not None:
        values, dtype = values_tensor, values_tensor.dtype
        default = (_typed_default(values_tensor) if default_tensor is None
                   else default_tensor.ravel()[0])
    elif values_floats is not None:
        values, dtype, default = values_floats, np.float32, default_float
    elif values_int64s is not None:
        values, dtype, default = values_int64s, np.int64, default_int64
    else:
        values, dtype, default = values_strings, object, default_string
    fn = _memo((keys, values), lambda: _lookup_fn(keys, values, default, dtype))
    return fn(x)


@register("CategoryMapper", since=1, domain=ML)
def category_mapper(x, *, cats_int64s=(), cats_strings=(), default_int64=-1,
                    default_string="_Unused"):
    if _is_text(x):
        fn = _memo((cats_strings, cats_int64s), lambda: _lookup_fn(
            cats_strings, cats_int64s, default_int64, np.int64))
    else:
        fn = _memo((cats_int64s, cats_strings), lambda: _lookup_fn(
            cats_int64s, cats_strings, default_string, object))
    return fn(x)


@register("OneHotEncoder", since=1, domain=ML)
def one_hot_encoder(x, *, cats_int64s=None, cats_strings=None, zeros=1):
    """``x [...]`` -> float32 ``[..., n_categories]``; unknowns are all-zero rows."""
    cats = cats_strings if _is_text(x) else cats_int64s
    if not cats:
        raise ValueError("OneHotEncoder: no categories for this input type")
    n = len(cats)
    if _is_text(x):
        index = _memo((cats,), lambda: _lookup_fn(cats, range(n), -1, np.int64))(x)
    else:
        index = _memo((cats,), lambda: _lookup_fn(cats, range(n), -1, np.int64))(
            x.astype(np.int64))
    if not zeros and (index < 0).any():
        raise ValueError("OneHotEncoder: a value is not among the categories (zeros=0)")
    return (index[..., None] == np.arange(n)).astype(np.float32)


@register("Imputer", since=1, domain=ML)
def imputer(x, *, imputed_value_floats=None, imputed_value_int64s=None,
            replaced_value_float=0.0, replaced_value_int64=0):
    """Replaces ``replaced_value`` (NaN allowed) by the per-feature (or single) imputed value."""
    if x.dtype.kind == "f":
        values, replaced = imputed_value_floats, replaced_value_float
    else:
        values, replaced = imputed_value_int64s, replaced_value_int64
    fill = np.asarray(values, dtype=x.dtype)
    missing = np.isnan(x) if x.dtype.kind == "f" and np.isnan(replaced) else x == replaced
    return np.where(missing, fill if fill.size > 1 else fill.reshape(()), x)


@register("ZipMap", since=1, domain=ML)
def zip_map(x, *, classlabels_int64s=None, classlabels_strings=None):
    """Each row of ``x [N, C]`` -> a dict ``{label: score}`` (a sequence of maps)."""
    labels: Sequence[Any] = (classlabels_strings if classlabels_strings is not None
                             else classlabels_int64s)
    keys = list(labels)
    return [dict(zip(keys, row, strict=True)) for row in x.reshape(-1, len(keys)).tolist()]
