"""Pooling: Max/Average/Lp pooling over strided window slices, their Global forms, MaxUnpool.

Max, average and Lp pooling are separable: the window reduction runs one spatial axis at a time
(``k0 + k1`` passes over shrinking arrays instead of ``k0 * k1`` over the output), each pass
one vectorised ufunc over whole strided slices of the padded input, and the channels are cut
over the stream's intra-op threads. Max pooling with indices loops over the kernel-window
offsets (a small static count).
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import register
from ._window import Ints, offset_slices, offsets, out_size, pad_spatial, resolve_pads
from .parallel import run_blocks

_MIN_WORK = 1_000_000  # window elements: a smaller pool stays on one thread (measured)


class _Geometry:
    """Output size and padding of one pooling call (``end`` includes the ceil-mode overhang)."""

    def __init__(self, x: np.ndarray, auto_pad: str, kernel: Ints, strides: Ints | None,
                 dilations: Ints | None, pads: Ints | None, ceil_mode: int) -> None:
        n = len(kernel)
        self.kernel = list(kernel)
        self.strides = list(strides) if strides else [1] * n
        self.dilations = list(dilations) if dilations else [1] * n
        pads = list(pads) if pads else [0] * (2 * n)
        self.in_shape = x.shape[2:]
        self.begin, self.pads_end = resolve_pads(
            auto_pad, self.in_shape, kernel, self.strides, self.dilations, pads
        )
        axes = zip(self.in_shape, kernel, self.strides, self.dilations, self.begin,
                   self.pads_end, strict=True)
        self.out = [out_size(*axis, ceil=bool(ceil_mode)) for axis in axes]
        self.end = [
            max(pe, (o - 1) * s + (k - 1) * d + 1 - size - pb)
            for o, s, k, d, size, pb, pe in zip(self.out, self.strides, kernel, self.dilations,
                                                 self.in_shape, self.begin, self.pads_end,
                                                 strict=True)
        ]

    def slices(self, xp: np.ndarray):
        """Yield (offset, strided slice of ``xp`` that the offset sees at every output)."""
        for off in offsets(self.kernel):
            sl = offset_slices(off, self.out, self.strides, self.dilations)
            yield off, xp[(slice(None), slice(None), *sl)]

    def reduce(self, x: np.ndarray, ufunc: np.ufunc, fill: float, y: np.ndarray) -> None:
        """``y`` = ``ufunc`` over every window of ``x`` padded with ``fill``, axis by axis,
        with the channels cut over the intra-op threads."""
        n_sp = len(self.kernel)

        def block(lo: int, hi: int) -> None:
            cur = pad_spatial(x[:, lo:hi], self.begin, self.end, fill)
            for axis in range(n_sp):
                last = axis == n_sp - 1
                cur = self._reduce_axis(cur, axis, ufunc, y[:, lo:hi] if last else None)

        work = float(y.size) * math.prod(self.kernel)
        run_blocks(block, x.shape[1], work, _MIN_WORK)

    def _reduce_axis(self, cur: np.ndarray, axis: int, ufunc: np.ufunc,
                     dst: np.ndarray | None) -> np.ndarray:
        """``ufunc`` over the window of spatial ``axis`` at every output position, into ``dst``."""
        k, s, d, o = self.kernel[axis], self.strides[axis], self.dilations[axis], self.out[axis]
        lead = (slice(None),) * (2 + axis)
        parts = [cur[(*lead, slice(off * d, off * d + (o - 1) * s + 1, s))] for off in range(k)]
        if dst is None:
            dst = np.empty(parts[0].shape, dtype=cur.dtype)
        if k == 1:
            np.copyto(dst, parts[0])
            return dst
        ufunc(parts[0], parts[1], out=dst)
        for part in parts[2:]:
            ufunc(dst, part, out=dst)
        return dst

    def counts(self, lo_pad: Ints, hi_pad: Ints) -> np.ndarray:
        """Window elements inside [-lo_pad, size + hi_pad) per output position (separable)."""
        total = np.ones((), dtype=np.int64)
        for axis, (o, s, k, d) in enumerate(
            zip(self.out, self.strides, self.kernel, self.dilations, strict=True)
        ):
            pos = (np.arange(o) * s - self.begin[axis])[:, None] + np.arange(k) * d
            inside = (pos >= -lo_pad[axis]) & (pos < self.in_shape[axis] + hi_pad[axis])
            total = np.multiply.outer(total, inside.sum(axis=1))
        return total


def _lowest(dtype: np.dtype) -> float:
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _flat_index(geo: _Geometry, off: Ints, storage_order: int) -> np.ndarray:
    """Flat spatial index (into the unpadded input) that offset ``off`` reads at each output."""
    shape = list(geo.in_shape)
    order = range(len(shape)) if storage_order == 0 else reversed(range(len(shape)))
    idx = np.zeros((), dtype=np.int64)
    for axis in order:
        pos = np.arange(geo.out[axis]) * geo.strides[axis] - geo.begin[axis]
        pos += off[axis] * geo.dilations[axis]
        shaped = pos.reshape([-1 if a == axis else 1 for a in range(len(shape))])
        idx = idx * shape[axis] + shaped
    return idx


@register("MaxPool", since=1)
def max_pool(x, *, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None,
             pads=None, storage_order=0, strides=None, n_outputs=1):
    geo = _Geometry(x, auto_pad, kernel_shape, strides, dilations, pads, ceil_mode)
    if n_outputs < 2:
        y = np.empty((*x.shape[:2], *geo.out), dtype=x.dtype)
        geo.reduce(x, np.maximum, _lowest(x.dtype), y)
        return y
    xp = pad_spatial(x, geo.begin, geo.end, _lowest(x.dtype))
    y = np.full((*x.shape[:2], *geo.out), _lowest(x.dtype), dtype=x.dtype)
    idx = np.zeros(y.shape, dtype=np.int64)
    for off, sl in geo.slices(xp):
        better = sl > y
        np.copyto(y, sl, where=better)
        np.copyto(idx, _flat_index(geo, off, storage_order), where=better)
    n, c = x.shape[:2]
    base = np.arange(n * c, dtype=np.int64).reshape(n, c, *([1] * len(geo.out)))
    idx += base * int(np.prod(geo.in_shape))
    return y, idx


@register("AveragePool", since=1)
def average_pool(x, *, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None,
                 kernel_shape=None, pads=None, strides=None):
    geo = _Geometry(x, auto_pad, kernel_shape, strides, dilations, pads, ceil_mode)
    y = _window_sum(x, geo, None)
    y *= _inverse_counts(geo, bool(count_include_pad), y.dtype)
    return y


_INVERSE_COUNTS: dict[tuple, np.ndarray] = {}


def _inverse_counts(geo: _Geometry, include_pad: bool, dtype: np.dtype) -> np.ndarray:
    """1 / (window elements averaged) per output position, cached per geometry (read-only)."""
    key = (tuple(geo.in_shape), tuple(geo.kernel), tuple(geo.strides), tuple(geo.dilations),
           tuple(geo.begin), tuple(geo.pads_end), tuple(geo.out), include_pad, np.dtype(dtype))
    inverse = _INVERSE_COUNTS.get(key)
    if inverse is None:
        zero = [0] * len(geo.out)
        counts = geo.counts(geo.begin, geo.pads_end) if include_pad else geo.counts(zero, zero)
        inverse = (1.0 / counts).astype(dtype)
        inverse.flags.writeable = False
        if len(_INVERSE_COUNTS) > 256:
            _INVERSE_COUNTS.clear()
        _INVERSE_COUNTS[key] = inverse
    return inverse


def _window_sum(x: np.ndarray, geo: _Geometry, p: float | None) -> np.ndarray:
    """Sum over each window of ``x`` (or of ``|x|**p``), zero-padded."""
    src = x if p is None else np.abs(x) if p == 1 else np.abs(x) ** x.dtype.type(p)
    y = np.empty((*x.shape[:2], *geo.out), dtype=x.dtype)
    geo.reduce(src, np.add, 0, y)
    return y


@register("LpPool", since=1)
def lp_pool(x, *, auto_pad="NOTSET", ceil_mode=0, dilations=None, kernel_shape=None, p=2,
            pads=None, strides=None):
    geo = _Geometry(x, auto_pad, kernel_shape, strides, dilations, pads, ceil_mode)
    y = _window_sum(x, geo, p)
    return y if p == 1 else np.power(y, x.dtype.type(1.0 / p), out=y)


def _spatial_axes(x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


@register("GlobalAveragePool", since=1)
def global_average_pool(x):
    return np.mean(x, axis=_spatial_axes(x), keepdims=True, dtype=x.dtype)


@register("GlobalMaxPool", since=1)
def global_max_pool(x):
    return np.max(x, axis=_spatial_axes(x), keepdims=True)


@register("GlobalLpPool", since=1)
def global_lp_pool(x, *, p=2):
    s = np.sum(np.abs(x) ** x.dtype.type(p), axis=_spatial_axes(x), keepdims=True)
    return np.power(s, x.dtype.type(1.0 / p))


@register("MaxUnpool", since=9)
def max_unpool(x, indices, output_shape=None, *, kernel_shape=None, pads=None, strides=None):
    """Scatter into the inferred unpooled shape, then zero-extend that to ``output_shape``."""
    n_sp = x.ndim - 2
    strides = list(strides) if strides else [1] * n_sp
    pads = list(pads) if pads else [0] * (2 * n_sp)
    axes = zip(x.shape[2:], strides, kernel_shape, pads[:n_sp], pads[n_sp:], strict=True)
    shape = [*x.shape[:2], *((size - 1) * s + k - p0 - p1 for size, s, k, p0, p1 in axes)]
    y = np.zeros(shape, dtype=x.dtype)
    y.reshape(-1)[indices.reshape(-1)] = x.reshape(-1)
    if output_shape is None or [int(v) for v in output_shape] == shape:
        return y
    out = np.zeros([int(v) for v in output_shape], dtype=x.dtype)
    out[tuple(slice(0, d) for d in shape)] = y
    return out
