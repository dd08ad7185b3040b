"""TfIdfVectorizer: n-gram (with skips) counts over a pool of n-grams, vectorised.

Tokens become vocabulary codes; an n-gram is looked up one token at a time through per-level
tables keyed by ``prefix_id * (V + 1) + code`` (so keys stay small), each a ``searchsorted``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import register
from .ml import _lookup_fn, _memo


@dataclass
class _Pool:
    encode: object  # token array -> vocabulary codes (-1 when absent)
    vocab: int
    levels: dict[int, list[tuple[np.ndarray, np.ndarray]]]  # n -> per level (keys, ids)
    columns: dict[int, np.ndarray]  # n -> output column of each final-level id


def _build(pool: list, counts: list[int], indexes: list[int], lo: int, hi: int) -> _Pool:
    vocab_items = list(dict.fromkeys(pool))
    encode = _lookup_fn(vocab_items, range(len(vocab_items)), -1, np.int64)
    codes = encode(np.array(pool, dtype=object if isinstance(pool[0], str) else np.int64))
    base = len(vocab_items) + 1
    bounds = [*counts, len(pool)]
    levels, columns, ordinal = {}, {}, 0
    for n, (start, end) in enumerate(zip(bounds[:-1], bounds[1:], strict=True), start=1):
        grams = codes[start:end].reshape(-1, n)
        first = ordinal
        ordinal += grams.shape[0]
        if not (lo <= n <= hi) or not grams.size:
            continue
        parent = np.zeros(grams.shape[0], np.int64)
        tables = []
        for k in range(n):
            keys = parent * base + grams[:, k]
            uniq, parent = np.unique(keys, return_inverse=True)
            tables.append((uniq, np.arange(uniq.size)))
        cols = np.empty(tables[-1][0].size, np.int64)
        cols[parent] = np.asarray(indexes, np.int64)[first:ordinal]
        levels[n], columns[n] = tables, cols
    return _Pool(encode, base, levels, columns)


def _match(pool: _Pool, n: int, window: list[np.ndarray]) -> np.ndarray:
    """Output column of each n-gram in ``window`` (n arrays of codes), -1 if not in the pool."""
    ids = np.zeros(window[0].shape, np.int64)
    ok = np.ones(window[0].shape, bool)
    for (keys, level_ids), tok in zip(pool.levels[n], window, strict=True):
        key = ids * pool.vocab + tok
        pos = np.minimum(np.searchsorted(keys, key), keys.size - 1)
        ok &= (keys[pos] == key) & (tok >= 0)
        ids = level_ids[pos]
    return np.where(ok, pool.columns[n][ids], -1)


@register("TfIdfVectorizer", since=9)
def tfidf_vectorizer(x, *, max_gram_length, max_skip_count, min_gram_length, mode,
                     ngram_counts, ngram_indexes, pool_int64s=None, pool_strings=None,
                     weights=None):
    pool_items = pool_strings if pool_strings is not None else pool_int64s
    pool = _memo((pool_items, ngram_counts, ngram_indexes), lambda: _build(
        list(pool_items), ngram_counts, ngram_indexes, min_gram_length, max_gram_length))
    size = max(ngram_indexes) + 1
    rows = x.reshape(1, -1) if x.ndim < 2 else x
    codes = pool.encode(rows)
    n_rows, width = codes.shape
    hits = []
    for n in pool.levels:
        for d in range(1, (1 if n == 1 else max_skip_count + 1) + 1):
            span = (n - 1) * d
            if span >= width:
                break
            window = [codes[:, k * d: width - span + k * d] for k in range(n)]
            col = _match(pool, n, window)
            row = np.broadcast_to(np.arange(n_rows)[:, None], col.shape)
            hits.append((row * size + col)[col >= 0])
    flat = np.concatenate(hits) if hits else np.zeros(0, np.int64)
    tf = np.bincount(flat, minlength=n_rows * size).reshape(n_rows, size).astype(np.float32)
    w = None
    if weights:  # weights[i] belongs to the i-th n-gram of the pool (as onnxruntime reads it)
        w = np.zeros(size, np.float32)
        w[np.asarray(ngram_indexes)] = weights
    if mode == "IDF":
        out = (tf > 0).astype(np.float32) if w is None else np.where(tf > 0, w, np.float32(0))
    elif mode == "TFIDF":
        out = tf if w is None else tf * w
    elif mode == "TF":
        out = tf
    else:
        raise ValueError(f"unknown TfIdfVectorizer mode {mode!r}")
    return out if x.ndim == 2 else out.reshape(size)
