"""String ops over object arrays of ``str``: StringConcat, StringNormalizer, StringSplit,
RegexFullMatch. Strings have no vectorised fast path; these are list comprehensions."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from ..registry import register


def _str(v: object) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


@register("StringConcat", since=20)
def string_concat(x, y):
    out = np.add(x.astype(object, copy=False), y.astype(object, copy=False), dtype=object)
    return np.asarray(out, dtype=object)


@register("StringNormalizer", since=10)
def string_normalizer(x, *, case_change_action="NONE", is_case_sensitive=0, locale="",
                      stopwords=None):
    """Drops stopword elements of a ``[C]`` or ``[1, C]`` tensor, then changes case.

    ``locale`` is best effort: case changes use Python's locale-independent Unicode rules.
    """
    if x.ndim == 2 and x.shape[0] != 1 or x.ndim not in (1, 2):
        raise ValueError(f"StringNormalizer takes [C] or [1, C] input, got {x.shape}")
    words = [_str(v) for v in x.ravel().tolist()]
    if stopwords:
        if is_case_sensitive:
            stops = set(stopwords)
            words = [w for w in words if w not in stops]
        else:
            stops = {s.casefold() for s in stopwords}
            words = [w for w in words if w.casefold() not in stops]
    if case_change_action == "LOWER":
        words = [w.lower() for w in words]
    elif case_change_action == "UPPER":
        words = [w.upper() for w in words]
    elif case_change_action != "NONE":
        raise ValueError(f"unknown case_change_action {case_change_action!r}")
    out = np.array(words or [""], dtype=object)
    return out.reshape(1, -1) if x.ndim == 2 else out


@register("StringSplit", since=20)
def string_split(x, *, delimiter=None, maxsplit=None):
    """Splits each element; returns ``(parts [..., max_parts] padded with "", counts)``."""
    sep = delimiter or None  # empty/absent: split on runs of whitespace
    limit = -1 if maxsplit is None else int(maxsplit)
    parts = [_str(v).split(sep, limit) for v in x.ravel().tolist()]
    counts = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
    width = int(counts.max(initial=0))
    out = np.empty((len(parts), width), dtype=object)
    out[...] = [p + [""] * (width - len(p)) for p in parts] if width else out
    return out.reshape(*x.shape, width), counts


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@register("RegexFullMatch", since=20)
def regex_full_match(x, *, pattern):
    """Whether each element fully matches ``pattern`` (Python ``re`` standing in for RE2)."""
    match = _compile(pattern).fullmatch
    flat = [match(_str(v)) is not None for v in x.ravel().tolist()]
    return np.array(flat, dtype=bool).reshape(x.shape)
