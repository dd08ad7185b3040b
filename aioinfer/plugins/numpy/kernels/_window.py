"""Shared helpers of the windowed ops (convolutions, pooling): padding rules and window views."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

Ints = Sequence[int]


def spatial_defaults(
    n: int, strides: Ints | None, dilations: Ints | None, pads: Ints | None
) -> tuple[list[int], list[int], list[int]]:
    """Fill in the ONNX defaults: strides and dilations of 1, no padding."""
    return (
        list(strides) if strides else [1] * n,
        list(dilations) if dilations else [1] * n,
        list(pads) if pads else [0] * (2 * n),
    )


def resolve_pads(
    auto_pad: str, in_shape: Ints, kernel: Ints, strides: Ints, dilations: Ints, pads: Ints
) -> tuple[list[int], list[int]]:
    """Begin and end padding per spatial axis, following ``auto_pad`` (Conv/Pool rules)."""
    n = len(in_shape)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for size, k, s, d in zip(in_shape, kernel, strides, dilations, strict=True):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small = total // 2
            first = small if auto_pad == "SAME_UPPER" else total - small
            begin.append(first)
            end.append(total - first)
        return begin, end
    if auto_pad == "VALID":
        return [0] * n, [0] * n
    return list(pads[:n]), list(pads[n:])


def out_size(size: int, k: int, s: int, d: int, before: int, after: int, ceil: bool = False) -> int:
    """Number of window positions along one axis (``ceil``: the pooling ceil_mode rule)."""
    span = size + before + after - ((k - 1) * d + 1)
    if not ceil:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + before:  # the last window must start inside the input
        out -= 1
    return out


def pad_spatial(x: np.ndarray, begin: Ints, end: Ints, value: float = 0,
                shuffle: int = 0) -> np.ndarray:
    """``x`` padded on its spatial axes (2..); ``x`` itself when there is nothing to pad.

    ``shuffle`` = G > 1 also shuffles the channels as ShuffleNet does (channel ``g * K + k``
    moves to ``k * G + g``, K = C / G) in the same copy.
    """
    if not any(begin) and not any(end):
        return shuffle_channels(x, shuffle) if shuffle > 1 else x
    shape = (*x.shape[:2], *(n + b + e for n, b, e in zip(x.shape[2:], begin, end, strict=True)))
    out = np.zeros(shape, dtype=x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    inner = (..., *(slice(b, b + n) for b, n in zip(begin, x.shape[2:], strict=True)))
    if shuffle > 1:
        n, c = x.shape[:2]
        src = x.reshape(n, shuffle, c // shuffle, *x.shape[2:]).swapaxes(1, 2)
        out.reshape(n, c // shuffle, shuffle, *shape[2:])[inner] = src  # out is contiguous
    else:
        out[inner] = x
    return out


def shuffle_channels(x: np.ndarray, groups: int) -> np.ndarray:
    """ShuffleNet's channel shuffle of ``x`` (N, C, ...): Reshape (N, G, C/G, ...), swap axes
    1 and 2, Reshape back; one strided copy."""
    n, c = x.shape[:2]
    y = np.empty((n, c // groups, groups, *x.shape[2:]), dtype=x.dtype)
    np.copyto(y, x.reshape(n, groups, c // groups, *x.shape[2:]).swapaxes(1, 2))
    return y.reshape(x.shape)


def windows(
    xp: np.ndarray, out: Ints, kernel: Ints, strides: Ints, dilations: Ints, kernel_first: bool
) -> np.ndarray:
    """A read-only view of the sliding windows of ``xp`` (N, C, *spatial).

    Shape (N, C, *kernel, *out) when ``kernel_first``, else (N, C, *out, *kernel).
    """
    lead, sp = xp.strides[:2], xp.strides[2:]
    k_strides = tuple(st * d for st, d in zip(sp, dilations, strict=True))
    o_strides = tuple(st * s for st, s in zip(sp, strides, strict=True))
    if kernel_first:
        shape, strd = (*kernel, *out), (*k_strides, *o_strides)
    else:
        shape, strd = (*out, *kernel), (*o_strides, *k_strides)
    return as_strided(xp, xp.shape[:2] + tuple(shape), lead + strd, writeable=False)


def offsets(kernel: Ints) -> Iterator[tuple[int, ...]]:
    """Every kernel-window offset (a small static count)."""
    return itertools.product(*(range(k) for k in kernel))


def offset_slices(
    offset: Ints, out: Ints, strides: Ints, dilations: Ints
) -> tuple[slice, ...]:
    """Slices of a padded input hit by window element ``offset`` at every output position."""
    return tuple(
        slice(o * d, o * d + (n - 1) * s + 1, s)
        for o, n, s, d in zip(offset, out, strides, dilations, strict=True)
    )
