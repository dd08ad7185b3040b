"""DeformConv (2-D): bilinear samples at offset window positions, then one batched GEMM."""

from __future__ import annotations

import numpy as np

from ..registry import register
from ._window import spatial_defaults


def _bilinear(xf: np.ndarray, py: np.ndarray, px: np.ndarray, h: int, w: int) -> np.ndarray:
    """Sample ``xf`` (n, og, cog, h*w) at (py, px) (n, og, K, P), zero outside the image.

    Returns (n, og, cog, K*P).
    """
    n, og, k, p = py.shape
    y0, x0 = np.floor(py), np.floor(px)
    ly, lx = py - y0, px - x0
    out = np.zeros((*xf.shape[:3], k * p), dtype=xf.dtype)
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        yy, xx = y0 + dy, x0 + dx
        weight = (ly if dy else 1 - ly) * (lx if dx else 1 - lx)
        weight *= (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        idx = np.clip(yy, 0, h - 1).astype(np.intp) * w + np.clip(xx, 0, w - 1).astype(np.intp)
        idx = np.broadcast_to(idx.reshape(n, og, 1, k * p), out.shape)
        out += np.take_along_axis(xf, idx, axis=3) * weight.reshape(n, og, 1, k * p)
    return out


@register("DeformConv", since=19)
def deform_conv(x, w, offset, b=None, mask=None, *, dilations=None, group=1, kernel_shape=None,
                offset_group=1, pads=None, strides=None):
    if x.ndim != 4:
        raise NotImplementedError(f"DeformConv supports 2-D images only, got shape {x.shape}")
    n, c, h, wd = x.shape
    kh, kw = w.shape[2:]
    (sh, sw), (dh, dw), pads = spatial_defaults(2, strides, dilations, pads)
    oh, ow = offset.shape[2:]
    k, p, og = kh * kw, oh * ow, offset_group
    off = offset.reshape(n, og, k, 2, p)
    base_h = np.repeat(np.arange(oh) * sh - pads[0], ow)
    base_w = np.tile(np.arange(ow) * sw - pads[1], oh)
    ker_h = np.repeat(np.arange(kh) * dh, kw)
    ker_w = np.tile(np.arange(kw) * dw, kh)
    py = (ker_h[:, None] + base_h).astype(x.dtype) + off[:, :, :, 0]
    px = (ker_w[:, None] + base_w).astype(x.dtype) + off[:, :, :, 1]
    samples = _bilinear(x.reshape(n, og, c // og, h * wd), py, px, h, wd)
    if mask is not None:
        samples = samples.reshape(n, og, c // og, k, p)
        samples *= mask.reshape(n, og, 1, k, p)
    cols = samples.reshape(n, group, (c // group) * k, p)
    m = w.shape[0]
    y = np.matmul(w.reshape(group, m // group, -1), cols).reshape(n, m, oh, ow)
    if b is not None:
        y += b.reshape(-1, 1, 1)
    return y
