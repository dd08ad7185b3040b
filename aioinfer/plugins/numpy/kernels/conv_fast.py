"""The convolution forward pass of the fused Conv: one GEMM per call, epilogue included.

A convolution becomes ``W (G, Mg, Cg*K) @ cols (N, G, Cg*K, P)`` written into the output buffer
itself: 1x1 stride-1 convolutions read the input directly, other kernels gather an im2col
matrix from a strided window view. Depthwise convolutions are the same batched product with
Mg = Cg = 1 (measured 1.3-1.9x faster than multiply-accumulating the K shifted images).

With several intra-op threads (``parallel.run_blocks``) the whole operator is cut, not only its
GEMM: the im2col copy by input channels, then the GEMM *and its epilogue* (bias, residual,
activation) by output channels, so each thread finishes its rows while they are in its cache
and nothing runs single-threaded between the products. Narrow floats use ``conv_nd``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ._window import offsets as _offsets
from ._window import (
    out_size,
    pad_spatial,
    resolve_pads,
    shuffle_channels,
    spatial_defaults,
    windows,
)
from .conv import conv_nd
from .parallel import run_blocks

Activation = Callable[[np.ndarray], object]  # applies an activation in place
_MIN_COPY = 1_500_000  # elements: a smaller im2col copy is not worth a thread hand-off
_SHIFTED_MIN_C, _SHIFTED_MAX_M = 64, 32  # where _shifted_rows beats im2col (measured)
_TILE_ELEMENTS = 64 * 1024  # input elements one _shifted_rows tile reads (256 KB of float32)
_GATHER_COST = 16.0  # im2col copy of one element, in multiply-adds (memory-bound: dear)


def conv_forward(x, w, b, auto_pad, dilations, group, pads, strides, z=None,
                 act: Activation | None = None, shuffle: int = 0,
                 into: np.ndarray | None = None, epilogue: type | None = None) -> np.ndarray:
    """Conv(x, w, b) [+ z] [-> act] into a fresh writable array of x's dtype, or into
    ``into`` (a view of the output's shape, e.g. a channel slice of a Concat's buffer).

    ``shuffle`` = G > 1 convolves ShuffleNet's channel shuffle of ``x`` (``shuffle_channels``),
    shuffled in the padding copy where the convolution pads. ``epilogue`` replaces the class
    of the GEMM path's block epilogue (``_Epilogue``'s constructor and call signatures).
    """
    y = _conv(x, w, b, auto_pad, dilations, group, pads, strides, z, act, shuffle, into,
              epilogue or _Epilogue)
    if into is None or np.may_share_memory(y, into):
        return y
    np.copyto(into, y)  # a path that cannot write in place: one copy, as the Concat made
    return into


def _conv(x, w, b, auto_pad, dilations, group, pads, strides, z, act: Activation | None,
          shuffle: int, into: np.ndarray | None, epilogue: type) -> np.ndarray:
    kernel = w.shape[2:]
    if shuffle > 1 and (x.ndim < 3 or x.dtype != w.dtype or x.dtype.kind != "f"
                        or x.itemsize < 4 or not any(k > 1 for k in kernel)):
        x, shuffle = shuffle_channels(x, shuffle), 0  # paths that do not pad through here
    if x.ndim < 3 or x.dtype != w.dtype or x.dtype.kind != "f" or x.itemsize < 4:
        return _epilogue(conv_nd(x, w, b, auto_pad, dilations, group, pads, strides), z, act)
    n_sp = x.ndim - 2
    strides, dilations, pads = spatial_defaults(n_sp, strides, dilations, pads)
    begin, end = resolve_pads(auto_pad, x.shape[2:], kernel, strides, dilations, pads)
    out = [out_size(*a) for a in zip(x.shape[2:], kernel, strides, dilations, begin, end,
                                       strict=True)]
    n, c = x.shape[:2]
    m = w.shape[0]
    mg = m // group
    positions = math.prod(out)
    windowed = any(k > 1 for k in kernel)
    by_group = mg < 4 and group > 1  # depthwise-like: cut the groups
    if by_group and windowed and all(st == 1 for st in strides):
        return _grouped_flat(x, w, b, z, act, group, out, dilations, begin, end, shuffle)
    if (group == 1 and windowed and all(st == 1 for st in strides) and out[0] >= 2
            and c >= _SHIFTED_MIN_C and m <= _SHIFTED_MAX_M):
        return _shifted_rows(x, w, b, z, act, out, dilations, begin, end, shuffle, into)
    src, gather = _source(x, kernel, out, strides, dilations, begin, end, shuffle)
    shape = (n, group, mg, positions)
    y = np.empty(shape, dtype=x.dtype) if into is None else _view_as(into, shape)
    full = (n, m, *out)
    zb = None
    if z is not None and z.shape == full:
        zb, z = z.reshape(n, group, mg, positions), None  # added block by block below
    after = z is not None  # a broadcast residual: added, then activated, after the blocks
    epi = epilogue(b, zb, None if after else act, group, mg, x.dtype)
    w3 = w.reshape(group, mg, -1)
    work = float(m) * w3.shape[2] * positions * n + (_GATHER_COST * src.size if gather else 0)
    if windowed and not by_group and positions >= mg and out[0] >= 2:
        # Cut output rows: each thread gathers, multiplies and finishes its own positions
        # (measured faster than a shared im2col; for 1x1 kernels output channels win).
        row = positions // out[0]

        def rows(lo: int, hi: int) -> None:
            part = src[(..., slice(lo, hi)) + (slice(None),) * (len(out) - 1)]
            cols = np.ascontiguousarray(part) if gather else part
            cols = cols.reshape(n, group, -1, (hi - lo) * row)
            cut = (Ellipsis, slice(lo * row, hi * row))
            np.matmul(w3, cols, out=y[cut])
            epi(y, cut)

        run_blocks(rows, out[0], work)
    else:
        cols = _parallel_copy(src) if gather else src
        cols = cols.reshape(n, group, -1, positions)

        def channels(lo: int, hi: int) -> None:
            if by_group:
                np.matmul(w3[lo:hi], cols[:, lo:hi], out=y[:, lo:hi])
                epi(y, (slice(None), slice(lo, hi)))
            else:
                np.matmul(w3[:, lo:hi], cols, out=y[:, :, lo:hi])
                epi(y, (slice(None), slice(None), slice(lo, hi)))

        run_blocks(channels, group if by_group else mg, work)
    return _epilogue(y.reshape(full), z, act if after else None)


def _flat_view(x: np.ndarray, begin, end, shuffle: int = 0
               ) -> tuple[np.ndarray, tuple[int, ...], list[int]]:
    """The flat padded image (N, C, L) with a spare row, its padded shape, its row lengths."""
    # a spare row keeps every run in bounds
    xp = pad_spatial(x, begin, [end[0] + 1, *end[1:]], shuffle=shuffle)
    padded = xp.shape[2:]
    row = [math.prod(padded[i + 1 :]) for i in range(len(padded))]
    return xp.reshape(*xp.shape[:2], -1), padded, row


def _view_as(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` reshaped to ``shape`` as a view (a channel slice splits and merges cleanly)."""
    return a.reshape(shape, copy=False)


def _shifted_rows(x, w, b, z, act, out, dilations, begin, end, shuffle: int = 0,
                  into: np.ndarray | None = None) -> np.ndarray:
    """A stride-1 convolution as a sum over kernel offsets of ``W[:, :, off] @ run(off)``.

    In the flat padded image, offset ``off`` reads for a block of output rows (over the full
    padded width) one contiguous run per channel: a BLAS-ready (C, L) matrix with a row
    stride, so no im2col copy is made at all. Pays off with many input channels and few
    output channels (DenseNet's 128 -> 32: 4.4 -> 2.9 ms), where the copy dominates. Output
    rows are cut over the threads; the valid columns are cropped out with the bias.
    """
    n, c = x.shape[:2]
    m = w.shape[0]
    flat, padded, row = _flat_view(x, begin, end, shuffle)
    starts = [sum(o * d * r for o, d, r in zip(off, dilations, row, strict=True))
              for off in _offsets(w.shape[2:])]
    wk = np.ascontiguousarray(np.moveaxis(w.reshape(m, c, -1), 2, 0))  # (K, M, C)
    y = np.empty((n, m, *out), dtype=x.dtype) if into is None else into
    zb = z if z is not None and z.shape == y.shape else None
    late = z is not None and zb is None
    bias = None if b is None else b.reshape(-1, *([1] * len(out))).astype(x.dtype, copy=False)
    crop = (Ellipsis, *(slice(0, o) for o in out[1:]))

    def tile(lo: int, hi: int) -> None:
        length = (hi - lo) * row[0]
        acc = np.empty((n, m, length), dtype=x.dtype)
        tmp = np.empty_like(acc) if len(starts) > 1 else acc
        for k, start in enumerate(starts):
            run = flat[..., lo * row[0] + start : lo * row[0] + start + length]
            np.matmul(wk[k], run, out=acc if k == 0 else tmp)
            if k:
                acc += tmp
        valid = acc.reshape(n, m, hi - lo, *padded[1:])[crop]
        yb = y[:, :, lo:hi]
        if bias is None:
            np.copyto(yb, valid)
        else:
            np.add(valid, bias, out=yb)
        if zb is not None:
            yb += zb[:, :, lo:hi]
        if act is not None and not late:
            act(yb)

    # A few rows at a time: the K products then re-read their runs from the core's L2.
    step = max(1, _TILE_ELEMENTS // (n * c * row[0]))

    def rows(lo: int, hi: int) -> None:
        for first in range(lo, hi, step):
            tile(first, min(hi, first + step))

    run_blocks(rows, out[0], float(m) * c * len(starts) * n * out[0] * row[0])
    return _epilogue(y, z, act) if late else y


def _grouped_flat(x, w, b, z, act, group, out, dilations, begin, end,
                  shuffle: int = 0) -> np.ndarray:
    """A stride-1 grouped (depthwise) convolution over the flattened padded image.

    Kernel offset ``off`` reads, for every output row over the full padded width, one
    contiguous run of the flat padded image, so the im2col copy moves long runs (a strided
    window copy moves rows of OW elements: 3x slower at 28x28); the product covers the padded
    width and the valid columns are cropped out together with the bias.
    """
    n, c = x.shape[:2]
    m = w.shape[0]
    flat, padded, row = _flat_view(x, begin, end, shuffle)
    length = out[0] * row[0]
    step = flat.strides[2]
    view = as_strided(flat, (n, c, *w.shape[2:], length),
                      (*flat.strides[:2], *(d * r * step for d, r in zip(dilations, row,
                                                                          strict=True)), step),
                      writeable=False)
    w3 = w.reshape(group, m // group, -1)
    taps = w3.shape[2]
    if b is None:
        cols = _parallel_copy(view).reshape(n, group, taps, length)
    else:
        # The bias rides in the product as one more row of ones (and a column of W): a
        # broadcast bias add over the cropped output costs 2x the crop copy it replaces.
        cols = np.empty((n, group, taps + 1, length), dtype=x.dtype)
        split = (n, group, c // group, *view.shape[2:])  # splits one axis: views, not copies
        _parallel_copy(view.reshape(split), cols[:, :, :taps].reshape(split))
        cols[:, :, taps] = 1
        w3 = np.concatenate([w3, b.reshape(group, m // group, 1).astype(x.dtype)], axis=2)
    full = np.matmul(w3, cols)
    valid = full.reshape(n, m, out[0], *padded[1:])[(..., *(slice(0, o) for o in out[1:]))]
    return _epilogue(np.ascontiguousarray(valid), z, act)


class _Epilogue:
    """Bias, residual and activation applied in place to one block of the (N, G, Mg, P) output."""

    def __init__(self, b, zb, act: Activation | None, group: int, mg: int, dtype) -> None:
        self.b = None if b is None else b.reshape(group, mg, 1).astype(dtype, copy=False)
        self.zb = zb
        self.act = act

    def __call__(self, y: np.ndarray, cut: tuple) -> None:
        yb = y[cut]
        if self.b is not None:
            yb += self.b[cut[1:]] if cut[0] is not Ellipsis else self.b
        if self.zb is not None:
            yb += self.zb[cut]
        if self.act is not None:
            self.act(yb)


def _epilogue(y: np.ndarray, z, act: Activation | None) -> np.ndarray:
    if z is not None:
        if np.broadcast_shapes(z.shape, y.shape) == y.shape:
            np.add(y, z, out=y)
        else:
            y = np.add(y, z)
    if act is not None:
        act(y)
    return y


def _source(x: np.ndarray, kernel, out, strides, dilations, begin, end, shuffle: int = 0
            ) -> tuple[np.ndarray, bool]:
    """What the GEMM multiplies, and whether it must be gathered (copied) first: a window view
    (N, C, *kernel, *out) of the padded input, a strided view (N, C, *out) for 1x1 kernels,
    or ``x`` itself (contiguous) for 1x1 stride-1 ones."""
    if all(k == 1 for k in kernel) and not any(begin) and not any(end):
        if all(s == 1 for s in strides):
            return np.ascontiguousarray(x), False
        return x[(..., *(slice(None, o * s, s) for o, s in zip(out, strides, strict=True)))], True
    xp = pad_spatial(x, begin, end, shuffle=shuffle)
    return windows(xp, out, kernel, strides, dilations, True), True


def _parallel_copy(src: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
    """A copy of ``src`` (into ``cols``, same shape, else a new contiguous array), cut by
    channels (or kernel rows, if few) over the threads."""
    if cols is None:
        cols = np.empty(src.shape, dtype=src.dtype)
    axis = 1 if src.shape[1] >= 4 or src.ndim == 3 else 2

    def copy(lo: int, hi: int) -> None:
        part = (slice(None),) * axis + (slice(lo, hi),)
        np.copyto(cols[part], src[part])

    run_blocks(copy, src.shape[axis], float(cols.size), _MIN_COPY)
    return cols
