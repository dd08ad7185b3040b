"""Column-scatter convolutions: ConvTranspose and Col2Im (GEMM then col2im), and DeformConv."""

from __future__ import annotations

import numpy as np

from ..registry import register
from ._window import Ints, offset_slices, offsets, out_size, spatial_defaults


def col2im(
    cols: np.ndarray, blocks: Ints, strides: Ints, dilations: Ints, begin: Ints, out: Ints
) -> np.ndarray:
    """Sum ``cols`` (N, C, *kernel, *blocks) into an image; keep ``out`` from ``begin`` on.

    ``begin`` may be negative (an output larger than the scattered area is zero-extended).
    """
    n_sp = len(blocks)
    kernel = cols.shape[2 : 2 + n_sp]
    axes = zip(blocks, kernel, strides, dilations, strict=True)
    full = [(b - 1) * s + (k - 1) * d + 1 for b, k, s, d in axes]
    lo = [min(0, b) for b in begin]
    size = [max(f, b + o) - low for f, b, o, low in zip(full, begin, out, lo, strict=True)]
    buf = np.zeros((*cols.shape[:2], *size), dtype=cols.dtype)
    shifted = buf[(..., *(slice(-low, None) for low in lo))]
    for off in offsets(kernel):
        sl = offset_slices(off, blocks, strides, dilations)
        shifted[(..., *sl)] += cols[(slice(None), slice(None), *off)]
    crop = tuple(slice(b - low, b - low + o) for b, low, o in zip(begin, lo, out, strict=True))
    res = buf[(..., *crop)]
    return res if res.shape == buf.shape else np.ascontiguousarray(res)


def _transpose_pads(
    auto_pad: str, in_sp: Ints, full: Ints, output_padding: Ints, output_shape: Ints | None,
    pads: Ints,
) -> tuple[list[int], list[int]]:
    n = len(in_sp)
    if output_shape is None and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return list(pads[:n]), list(pads[n:])
    if output_shape is None:
        output_shape = [0] * n  # filled below from the strides
    begin, end = [], []
    for f, op, o in zip(full, output_padding, output_shape[-n:], strict=True):
        total = f + op - o
        first = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        begin.append(first)
        end.append(total - first)
    return begin, end


@register("ConvTranspose", since=1)
def conv_transpose(x, w, b=None, *, auto_pad="NOTSET", dilations=None, group=1,
                   kernel_shape=None, output_padding=None, output_shape=None, pads=None,
                   strides=None):
    n_sp = x.ndim - 2
    in_sp, kernel = x.shape[2:], w.shape[2:]
    strides, dilations, pads = spatial_defaults(n_sp, strides, dilations, pads)
    output_padding = list(output_padding) if output_padding else [0] * n_sp
    axes = zip(in_sp, kernel, strides, dilations, strict=True)
    full = [s * (i - 1) + (k - 1) * d + 1 for i, k, s, d in axes]
    if output_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [i * s for i, s in zip(in_sp, strides, strict=True)]
    if auto_pad == "VALID":
        pads = [0] * (2 * n_sp)
    begin, end = _transpose_pads(auto_pad, in_sp, full, output_padding, output_shape, pads)
    out = [
        f + op - p0 - p1 for f, op, p0, p1 in zip(full, output_padding, begin, end, strict=True)
    ]
    n, c = x.shape[:2]
    mg = w.shape[1]
    wt = w.reshape(group, c // group, -1).transpose(0, 2, 1)  # (G, Mg*K, Cg)
    cols = np.matmul(wt, x.reshape(n, group, c // group, -1))
    cols = cols.reshape(n, group * mg, *kernel, *in_sp)
    y = col2im(cols, in_sp, strides, dilations, begin, out)
    if b is not None:
        y += b.reshape(-1, *([1] * n_sp))
    return y


@register("Col2Im", since=18)
def col2im_op(x, image_shape, block_shape, *, dilations=None, pads=None, strides=None):
    image, kernel = [int(v) for v in image_shape], [int(v) for v in block_shape]
    n_sp = len(image)
    strides, dilations, pads = spatial_defaults(n_sp, strides, dilations, pads)
    begin, end = pads[:n_sp], pads[n_sp:]
    blocks = [
        out_size(i, k, s, d, p0, p1)
        for i, k, s, d, p0, p1 in zip(image, kernel, strides, dilations, begin, end, strict=True)
    ]
    cols = x.reshape(x.shape[0], -1, *kernel, *blocks)
    return col2im(cols, blocks, strides, dilations, begin, image)
