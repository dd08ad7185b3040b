"""Convolutions on BLAS: Conv, ConvInteger, QLinearConv (im2col + one batched matmul per call).

The im2col matrix is a strided window view of the padded input, laid out (N, G, Cg*K, P) so that
``W(G, Mg, Cg*K) @ cols`` lands directly in (N, M, *out) order without a transpose. 1x1 stride-1
convolutions skip im2col; depthwise convolutions accumulate over the kernel offsets instead.
"""

from __future__ import annotations

import numpy as np

from ..registry import register
from ._window import (
    Ints,
    offset_slices,
    offsets,
    out_size,
    pad_spatial,
    resolve_pads,
    spatial_defaults,
    windows,
)
from .linalg import is_narrow_float, requantize


def conv_nd(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    auto_pad: str = "NOTSET",
    dilations: Ints | None = None,
    group: int = 1,
    pads: Ints | None = None,
    strides: Ints | None = None,
) -> np.ndarray:
    """N-d grouped convolution of ``x`` (N, C, *sp) with ``w`` (M, C/group, *k), in x's dtype.

    Narrow floats (float16, bfloat16) accumulate in float32 on BLAS and are rounded once.
    """
    if is_narrow_float(x.dtype):
        f32 = np.float32
        wide_b = None if b is None else b.astype(f32)
        y = conv_nd(x.astype(f32), w.astype(f32), wide_b, auto_pad, dilations, group, pads,
                    strides)
        return y.astype(x.dtype)
    n_sp = x.ndim - 2
    kernel = w.shape[2:]
    strides, dilations, pads = spatial_defaults(n_sp, strides, dilations, pads)
    begin, end = resolve_pads(auto_pad, x.shape[2:], kernel, strides, dilations, pads)
    axes = zip(x.shape[2:], kernel, strides, dilations, begin, end, strict=True)
    out = [out_size(*axis) for axis in axes]
    n, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    if all(s == 1 for s in strides) and (cg == 1 or any(k > 1 for k in kernel)):
        runs = _FlatRuns(x, begin, end, out, kernel, dilations)
        y = runs.depthwise(w, group) if cg == 1 and group > 1 else runs.gemm(w, group)
        return runs.crop(y, b)
    if cg == 1 and group > 1:
        y = _depthwise(pad_spatial(x, begin, end), w, group, out, strides, dilations)
    elif all(k == 1 for k in kernel) and not any(begin) and not any(end):
        xs = x[(..., *(slice(None, o * s, s) for o, s in zip(out, strides, strict=True)))]
        y = np.matmul(w.reshape(group, mg, cg), xs.reshape(n, group, cg, -1))  # plain GEMM
    else:
        view = windows(pad_spatial(x, begin, end), out, kernel, strides, dilations, True)
        cols = view.reshape(n, group, cg * int(np.prod(kernel)), -1)
        y = np.matmul(w.reshape(group, mg, -1), cols)
    y = y.reshape(n, m, *out)
    if b is not None:
        y += b.reshape(-1, *([1] * n_sp))
    return y


class _FlatRuns:
    """Stride-1 convolution over the flattened padded image, without an im2col copy.

    In the flattened padded image, kernel offset ``off`` reads a contiguous run that starts
    ``sum(off * dilation * row_stride)`` elements in: a BLAS-ready (C, L) matrix with a row
    stride. Outputs are computed over the full padded width, then the valid columns are kept.
    """

    def __init__(self, x: np.ndarray, begin: Ints, end: Ints, out: Ints, kernel: Ints,
                 dilations: Ints) -> None:
        xp = pad_spatial(x, begin, [end[0] + 1, *end[1:]])  # a spare row keeps runs in bounds
        self.padded = xp.shape[2:]
        row = [int(np.prod(self.padded[i + 1 :])) for i in range(len(self.padded))]
        self.length = out[0] * row[0]
        self.flat = xp.reshape(*xp.shape[:2], -1)
        self.out = out
        self.starts = [
            sum(o * d * r for o, d, r in zip(off, dilations, row, strict=True))
            for off in offsets(kernel)
        ]

    def _run(self, k: int) -> np.ndarray:
        return self.flat[..., self.starts[k] : self.starts[k] + self.length]

    def gemm(self, w: np.ndarray, group: int) -> np.ndarray:
        """Sum over offsets of W[:, :, off] @ run(off), per group: (N, G, Mg, L)."""
        n, c = self.flat.shape[:2]
        m = w.shape[0]
        wk = np.ascontiguousarray(np.moveaxis(w.reshape(group, m // group, c // group, -1), 3, 0))
        y = np.empty((n, group, m // group, self.length), dtype=np.result_type(self.flat, w))
        tmp = np.empty_like(y) if len(wk) > 1 else y
        for k in range(len(wk)):
            run = self._run(k).reshape(n, group, c // group, self.length)
            np.matmul(wk[k], run, out=y if k == 0 else tmp)
            if k:
                y += tmp
        return y

    def depthwise(self, w: np.ndarray, group: int) -> np.ndarray:
        """One input channel per group: multiply-accumulate the runs, (N, G, Mg, L)."""
        n = self.flat.shape[0]
        mg = w.shape[0] // group
        wk = w.reshape(group, mg, -1, 1)
        y = np.zeros((n, group, mg, self.length), dtype=np.result_type(self.flat, w))
        tmp = np.empty_like(y)
        for k in range(len(self.starts)):
            np.multiply(self._run(k)[:, :, None], wk[:, :, k], out=tmp)
            y += tmp
        return y

    def crop(self, y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        """The valid (N, M, *out) part of ``y``, plus the bias, as a new contiguous array."""
        n, m = y.shape[0], y.shape[1] * y.shape[2]
        full = y.reshape(n, m, self.out[0], *self.padded[1:])
        valid = full[(..., *(slice(0, o) for o in self.out[1:]))]
        if b is None:
            return np.ascontiguousarray(valid)
        bias = b.reshape(-1, *([1] * len(self.out))).astype(y.dtype, copy=False)
        return np.add(valid, bias)


def _depthwise(
    xp: np.ndarray, w: np.ndarray, group: int, out: Ints, strides: Ints, dilations: Ints
) -> np.ndarray:
    """One input channel per group (strided): multiply-accumulate over the kernel offsets."""
    n = xp.shape[0]
    mg = w.shape[0] // group
    ones = (1,) * len(out)
    acc = np.zeros((n, group, mg, *out), dtype=np.result_type(xp, w))
    tmp = np.empty_like(acc)
    for off in offsets(w.shape[2:]):
        sl = xp[(slice(None), slice(None), *offset_slices(off, out, strides, dilations))]
        wk = w[(slice(None), 0, *off)].reshape(group, mg, *ones)
        np.multiply(sl[:, :, None], wk, out=tmp)
        acc += tmp
    return acc


@register("Conv", since=1)
def conv(x, w, b=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
         pads=None, strides=None):
    return conv_nd(x, w, b, auto_pad, dilations, group, pads, strides)


def _shifted(v: np.ndarray, zero_point: np.ndarray | None, per_channel: bool) -> np.ndarray:
    """``v - zero_point`` as float64 (exact for 8-bit products summed by BLAS)."""
    out = v.astype(np.float64)
    if zero_point is not None:
        zp = np.asarray(zero_point, dtype=np.float64)
        if per_channel and zp.ndim == 1 and zp.size > 1:
            zp = zp.reshape(-1, *([1] * (v.ndim - 1)))
        out -= zp
    return out


@register("ConvInteger", since=10)
def conv_integer(x, w, x_zero_point=None, w_zero_point=None, *, auto_pad="NOTSET",
                 dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    xs, ws = _shifted(x, x_zero_point, False), _shifted(w, w_zero_point, True)
    return conv_nd(xs, ws, None, auto_pad, dilations, group, pads, strides).astype(np.int32)


@register("QLinearConv", since=10)
def qlinear_conv(x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point,
                 b=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
                 pads=None, strides=None):
    xs, ws = _shifted(x, x_zero_point, False), _shifted(w, w_zero_point, True)
    acc = conv_nd(xs, ws, b, auto_pad, dilations, group, pads, strides)
    w_scale = np.asarray(w_scale)
    if w_scale.size > 1:
        w_scale = w_scale.reshape(-1, *([1] * (x.ndim - 2)))
    return requantize(acc, x_scale * w_scale / y_scale, y_zero_point, x.dtype)
