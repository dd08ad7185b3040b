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
from .linalg import requantize


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
    """N-d grouped convolution of ``x`` (N, C, *sp) with ``w`` (M, C/group, *k), in x's dtype."""
    n_sp = x.ndim - 2
    kernel = w.shape[2:]
    strides, dilations, pads = spatial_defaults(n_sp, strides, dilations, pads)
    begin, end = resolve_pads(auto_pad, x.shape[2:], kernel, strides, dilations, pads)
    axes = zip(x.shape[2:], kernel, strides, dilations, begin, end, strict=True)
    out = [out_size(*axis) for axis in axes]
    n, c = x.shape[:2]
    m = w.shape[0]
    cg, mg = c // group, m // group
    if cg == 1 and group > 1:
        y = _depthwise(pad_spatial(x, begin, end), w, group, out, strides, dilations)
    else:
        p = int(np.prod(out))
        pointwise = all(k == 1 for k in kernel) and all(s == 1 for s in strides)
        if pointwise and not any(begin) and not any(end):
            cols = x.reshape(n, group, cg, p)  # a plain GEMM, no im2col
        else:
            view = windows(pad_spatial(x, begin, end), out, kernel, strides, dilations, True)
            cols = view.reshape(n, group, cg * int(np.prod(kernel)), p)
        y = np.matmul(w.reshape(group, mg, -1), cols).reshape(n, m, *out)
    if b is not None:
        y += b.reshape(-1, *([1] * n_sp))
    return y


def _depthwise(
    xp: np.ndarray, w: np.ndarray, group: int, out: Ints, strides: Ints, dilations: Ints
) -> np.ndarray:
    """One input channel per group: multiply-accumulate over the kernel offsets."""
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
    return acc.reshape(n, group * mg, *out)


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
