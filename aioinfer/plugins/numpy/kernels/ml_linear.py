"""``ai.onnx.ml`` numeric transforms and linear models: Normalizer, Scaler, FeatureVectorizer,
LinearRegressor, LinearClassifier, and the post-transforms shared with the tree ensembles."""

from __future__ import annotations

import numpy as np

from ..registry import register
from .ml import ML, _memo


def _erf_inv(x: np.ndarray) -> np.ndarray:
    """Winitzki's approximation of erf^-1 (the one onnxruntime uses)."""
    sgn = np.where(x < 0, -1.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ln = np.log((1.0 - x) * (1.0 + x))
    v = 2.0 / (np.pi * 0.147) + 0.5 * ln
    with np.errstate(invalid="ignore"):
        return sgn * np.sqrt(-v + np.sqrt(v * v - ln / 0.147))


def post_transform_scores(scores: np.ndarray, mode: str) -> np.ndarray:
    """Applies NONE / LOGISTIC / SOFTMAX / SOFTMAX_ZERO / PROBIT row-wise to ``[N, C]``."""
    if mode == "NONE":
        return scores
    if mode == "LOGISTIC":
        return 1.0 / (1.0 + np.exp(-scores))
    if mode == "SOFTMAX":
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if mode == "SOFTMAX_ZERO":
        top = scores.max(axis=1, keepdims=True)
        nonzero = np.abs(scores) > 1e-7
        e = np.where(nonzero, np.exp(scores - top), scores * np.exp(-top))
        total = e.sum(axis=1, keepdims=True)
        safe = np.where(total == 0, 1, total)
        return np.where(total == 0, scores.dtype.type(0.5), e / safe)
    if mode == "PROBIT":
        return (np.sqrt(2.0) * _erf_inv(2.0 * scores - 1.0)).astype(scores.dtype)
    raise ValueError(f"unknown post_transform {mode!r}")


def _as_2d_float(x: np.ndarray) -> np.ndarray:
    x = x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
    return x.reshape(1, -1) if x.ndim == 1 else x


@register("Normalizer", since=1, domain=ML)
def normalizer(x, *, norm="MAX"):
    """Row-wise division by the max (signed, as the spec and onnxruntime have it), the L1
    norm or the L2 norm (float32 output)."""
    x = _as_2d_float(x).astype(np.float32, copy=False)
    if norm == "MAX":
        top = x.max(axis=1, keepdims=True)
        return x / np.where(top == 0, np.float32(1), top)  # a zero max leaves the row as is
    if norm == "L1":
        div = np.abs(x).sum(axis=1, keepdims=True)
    elif norm == "L2":
        div = np.sqrt(np.square(x).sum(axis=1, keepdims=True))
    else:
        raise ValueError(f"unknown norm {norm!r}")
    return x / np.maximum(div, np.float32(1e-30))


@register("Scaler", since=1, domain=ML)
def scaler(x, *, offset=None, scale=None):
    """``(x - offset) * scale`` along the last axis, float32 output."""
    x = x.astype(np.float32, copy=False)
    off = np.asarray(offset if offset else [0.0], dtype=np.float32)
    sc = np.asarray(scale if scale else [1.0], dtype=np.float32)
    return (x - off) * sc


@register("FeatureVectorizer", since=1, domain=ML)
def feature_vectorizer(*xs, inputdimensions):
    """Concatenates ``[N, C_i]`` inputs, each cut or zero-padded to ``inputdimensions[i]``."""
    n = xs[0].shape[0]
    out = np.zeros((n, sum(inputdimensions)), dtype=np.float32)
    start = 0
    for x, width in zip(xs, inputdimensions, strict=True):
        x2 = x.reshape(n, -1)
        k = min(width, x2.shape[1])
        out[:, start:start + k] = x2[:, :k]
        start += width
    return out


def _linear(x: np.ndarray, coefficients, intercepts, n_out: int) -> np.ndarray:
    x = _as_2d_float(x)
    w = _memo((coefficients,), lambda: np.asarray(coefficients, np.float32).reshape(n_out, -1).T)
    scores = x @ w.astype(x.dtype, copy=False)
    if intercepts:
        scores += np.asarray(intercepts, dtype=x.dtype)
    return scores


@register("LinearRegressor", since=1, domain=ML)
def linear_regressor(x, *, coefficients=None, intercepts=None, targets=1, post_transform="NONE"):
    scores = _linear(x, coefficients, intercepts, targets)
    return post_transform_scores(scores, post_transform).astype(np.float32, copy=False)


@register("LinearClassifier", since=1, domain=ML)
def linear_classifier(x, *, coefficients, classlabels_ints=None, classlabels_strings=None,
                      intercepts=None, multi_class=0, post_transform="NONE"):
    """Returns ``(labels [N], scores [N, C])``, labels from the raw scores' argmax.

    One coefficient row with two labels is binary, as in onnxruntime: the score ``t`` (after a
    LOGISTIC transform, other transforms left out) becomes ``[1 - t, t]``.
    """
    labels = classlabels_strings if classlabels_strings is not None else classlabels_ints
    n_labels = len(labels) if labels is not None else 0
    n_rows = len(coefficients) // _as_2d_float(x).shape[1]
    raw = _linear(x, coefficients, intercepts, n_rows)
    if n_rows == 1:
        best = (raw[:, 0] > 0).astype(np.int64)
        if n_labels == 2:
            t = post_transform_scores(raw, "LOGISTIC" if post_transform == "LOGISTIC" else "NONE")
            scores = np.concatenate([1 - t, t], axis=1)
        else:
            scores = post_transform_scores(raw, post_transform)
    else:
        best = np.argmax(raw, axis=1)
        scores = post_transform_scores(raw, post_transform)
    scores = scores.astype(np.float32, copy=False)
    if labels is None:
        return best, scores
    table = np.asarray(labels, dtype=object if classlabels_strings is not None else np.int64)
    if n_labels == 1:
        table = np.concatenate([np.asarray(["" if classlabels_strings else 0], table.dtype),
                                table])
    return table[best], scores
