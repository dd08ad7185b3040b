"""Compiled Winograd F(2x2, 3x3) transforms: the input transform ``B^T d B`` and the output
transform ``A^T M A`` with the whole epilogue (bias, residual, activation), each one pass.

NumPy's ``winograd_conv`` makes ~20 strided passes for each transform plus three for the
epilogue; here each tile's 16 values are read once and written once. The adds and subtracts
are NumPy's, in NumPy's order (the transformed inputs are bit-identical); the GEMMs stay BLAS
(``np.matmul``), cut over the intra-op threads as NumPy's kernel cuts them. The output is
written straight into the cropped (N, K, OH, OW) result, odd sizes included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import fused
from .. import winograd as _np_wino
from ..parallel import run_blocks
from ._numba import njit, ro
from .conv import U, act_code, act_inplace


@njit
def input_transform(xp, v, c0, c1, t0, t1):
    """``v[:, c, n, ti - t0, tj]`` = B^T d B of the 4x4 tile (ti, tj) of channel ``c`` of the
    padded ``xp`` (N, C, 2 th + 2, 2 tw + 2), for ``c0 <= c < c1`` and tile rows ``t0:t1``."""
    n_img = xp.shape[0]
    tw = v.shape[4]
    for n in range(n_img):
        for c in range(c0, c1):
            image = xp[n, c]
            for ti in range(t0, t1):
                r0 = image[2 * ti]
                r1 = image[2 * ti + 1]
                r2 = image[2 * ti + 2]
                r3 = image[2 * ti + 3]
                row = ti - t0
                for tj in range(tw):
                    s = 2 * tj
                    # rows first: t_a[col] = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)[a]
                    a00 = r0[s] - r2[s]
                    a01 = r0[s + 1] - r2[s + 1]
                    a02 = r0[s + 2] - r2[s + 2]
                    a03 = r0[s + 3] - r2[s + 3]
                    a10 = r1[s] + r2[s]
                    a11 = r1[s + 1] + r2[s + 1]
                    a12 = r1[s + 2] + r2[s + 2]
                    a13 = r1[s + 3] + r2[s + 3]
                    a20 = r2[s] - r1[s]
                    a21 = r2[s + 1] - r1[s + 1]
                    a22 = r2[s + 2] - r1[s + 2]
                    a23 = r2[s + 3] - r1[s + 3]
                    a30 = r1[s] - r3[s]
                    a31 = r1[s + 1] - r3[s + 1]
                    a32 = r1[s + 2] - r3[s + 2]
                    a33 = r1[s + 3] - r3[s + 3]
                    # then columns: v[4 a + b]
                    v[0, c, n, row, tj] = a00 - a02
                    v[1, c, n, row, tj] = a01 + a02
                    v[2, c, n, row, tj] = a02 - a01
                    v[3, c, n, row, tj] = a01 - a03
                    v[4, c, n, row, tj] = a10 - a12
                    v[5, c, n, row, tj] = a11 + a12
                    v[6, c, n, row, tj] = a12 - a11
                    v[7, c, n, row, tj] = a11 - a13
                    v[8, c, n, row, tj] = a20 - a22
                    v[9, c, n, row, tj] = a21 + a22
                    v[10, c, n, row, tj] = a22 - a21
                    v[11, c, n, row, tj] = a21 - a23
                    v[12, c, n, row, tj] = a30 - a32
                    v[13, c, n, row, tj] = a31 + a32
                    v[14, c, n, row, tj] = a32 - a31
                    v[15, c, n, row, tj] = a31 - a33


@njit
def output_transform(m, y, b, z, mk0, k0, k1, t0, t1, code, alpha, lo,
                     hi):
    """``y[n, k]`` (N, K, OH, OW) over tile rows ``t0:t1`` and channels ``k0:k1`` =
    act(A^T M A + b[k] + z[n, k]) of ``m`` (16, K', N * (t1 - t0) * tw) whose channel index
    is ``k - mk0``; ``b`` (K,) or empty, ``z`` like ``y`` or with no batch.

    Per tile row: the four outputs of every tile into four runs (unit-stride SIMD loops over
    the tiles), then the epilogue interleaves them into the two output rows (plus the
    residual) and activates each row in place, one loop per activation (conv.act_inplace:
    a per-element branch on the activation inlined GELU's code here too, and kept it
    scalar)."""
    n_img, n_k, oh, ow = y.shape
    rows = t1 - t0
    flat = y.reshape(y.size)  # C-contiguous: the caller makes it
    res = z.reshape(z.size)
    tw = (ow + 1) // 2
    has_b = b.shape[0] > 0
    has_z = z.shape[0] > 0
    alpha = y.dtype.type(alpha)
    lo = y.dtype.type(lo)
    hi = y.dtype.type(hi)
    zero = y.dtype.type(0)
    e = np.empty((4, tw), dtype=y.dtype)
    e00, e01, e10, e11 = e[0], e[1], e[2], e[3]
    for n in range(n_img):
        for k in range(k0, k1):
            mk = k - mk0
            bias = b[k] if has_b else zero
            for ti in range(t0, t1):
                base = (n * rows + ti - t0) * tw
                m0, m1, m2, m3 = (m[0, mk, base : base + tw], m[1, mk, base : base + tw],
                                  m[2, mk, base : base + tw], m[3, mk, base : base + tw])
                m4, m5, m6, m7 = (m[4, mk, base : base + tw], m[5, mk, base : base + tw],
                                  m[6, mk, base : base + tw], m[7, mk, base : base + tw])
                m8, m9, m10, m11 = (m[8, mk, base : base + tw], m[9, mk, base : base + tw],
                                    m[10, mk, base : base + tw], m[11, mk, base : base + tw])
                m12, m13, m14, m15 = (m[12, mk, base : base + tw],
                                      m[13, mk, base : base + tw],
                                      m[14, mk, base : base + tw],
                                      m[15, mk, base : base + tw])
                for j in range(tw):
                    # along p: r0 = m0 + m1 + m2, r1 = m1 - m2 - m3 (for each q); then q
                    p00 = m0[j] + m4[j] + m8[j]
                    p01 = m1[j] + m5[j] + m9[j]
                    p02 = m2[j] + m6[j] + m10[j]
                    p03 = m3[j] + m7[j] + m11[j]
                    p10 = m4[j] - m8[j] - m12[j]
                    p11 = m5[j] - m9[j] - m13[j]
                    p12 = m6[j] - m10[j] - m14[j]
                    p13 = m7[j] - m11[j] - m15[j]
                    e00[j] = p00 + p01 + p02 + bias
                    e01[j] = p01 - p02 - p03 + bias
                    e10[j] = p10 + p11 + p12 + bias
                    e11[j] = p11 - p12 - p13 + bias
                for i in range(2):
                    row = 2 * ti + i
                    if row >= oh:
                        break
                    at = U(((n * n_k + k) * oh + row) * ow)
                    first = e00 if i == 0 else e10
                    second = e01 if i == 0 else e11
                    pairs = ow // 2
                    if has_z:
                        for j in range(pairs):
                            o = at + U(2 * j)
                            flat[o] = first[j] + res[o]
                            flat[o + U(1)] = second[j] + res[o + U(1)]
                        if ow % 2:
                            o = at + U(ow - 1)
                            flat[o] = first[pairs] + res[o]
                    else:
                        for j in range(pairs):
                            o = at + U(2 * j)
                            flat[o] = first[j]
                            flat[o + U(1)] = second[j]
                        if ow % 2:
                            flat[at + U(ow - 1)] = first[pairs]
                    act_inplace(flat, at, ow, code, alpha, lo, hi)


_F32 = np.dtype(np.float32)


def _planes(*shape: int) -> np.ndarray:
    """An empty (16, *shape) float32 array whose 16 planes are 64 bytes more than their size
    apart: planes an exact multiple of 4 KiB apart (64 channels of 28x28 tiles) put the 16
    streams of a transform in one L1 set, which ran the input transform 16x slower."""
    size = int(np.prod(shape))
    stride = size + 16
    flat = np.empty(16 * stride, dtype=np.float32)
    return flat.reshape(16, stride)[:, :size].reshape(16, *shape)


def winograd_conv(x, u, b=None, z=None, *, pads=(1, 1, 1, 1), activation="",
                  activation_alpha=0.01, clip_min=-np.inf, clip_max=np.inf):
    """``winograd.winograd_conv`` with compiled transforms and epilogue (float32; the
    activations of the conv epilogue; NumPy's kernel for the rest)."""
    try:
        code = act_code(fused._activation(activation, activation_alpha, clip_min, clip_max))
    except LookupError:
        code = None
    n, c, h, w = x.shape
    k = u.shape[1]
    out = (h + pads[0] + pads[2] - 2, w + pads[1] + pads[3] - 2)
    if (code is None or x.dtype != _F32 or u.dtype != _F32 or min(out) < 1
            or (z is not None and (z.shape != (n, k, *out) or z.dtype != _F32))
            or (b is not None and b.dtype != _F32)):
        return _np_wino.winograd_conv(x, u, b, z, pads=pads, activation=activation,
                                      activation_alpha=activation_alpha, clip_min=clip_min,
                                      clip_max=clip_max)
    th, tw = tiles = ((out[0] + 1) // 2, (out[1] + 1) // 2)
    xp = _np_wino._padded(np.ascontiguousarray(x), list(pads), tiles)
    y = np.empty((n, k, *out), dtype=np.float32)
    bias = ro(np.empty(0, np.float32) if b is None else np.ascontiguousarray(b.reshape(-1)))
    zz = ro(np.empty((0, 0, 0, 0), np.float32) if z is None else np.ascontiguousarray(z))
    xp = ro(xp)
    uc = np.ascontiguousarray(u)
    work = 16.0 * k * c * n * th * tw
    if n == 1 and th >= 2 and th * tw >= k:
        def tile_rows(lo: int, hi: int) -> None:
            v = _planes(c, 1, hi - lo, tw)
            input_transform(xp, v, 0, c, lo, hi)
            m = _planes(k, (hi - lo) * tw)
            np.matmul(uc, v.reshape(16, c, -1), out=m)
            output_transform(ro(m), y, bias, zz, 0, 0, k, lo, hi, *code)

        run_blocks(tile_rows, th, work)
    else:
        v = _planes(c, n, th, tw)
        run_blocks(lambda lo, hi: input_transform(xp, v, lo, hi, 0, th), c,
                   48.0 * v.size / 16, _np_wino._MIN_TRANSFORM)
        v2 = v.reshape(16, c, n * th * tw)

        def channels(lo: int, hi: int) -> None:
            m = _planes(hi - lo, n * th * tw)
            np.matmul(uc[:, lo:hi], v2, out=m)
            output_transform(ro(m), y, bias, zz, lo, lo, hi, 0, th, *code)

        run_blocks(channels, k, work)
    return y


def warm(variant: str, keywords: dict[str, Any]) -> None:
    """Compile (or load from the cache) the float32 kernels of this module."""
    xp = np.zeros((1, 1, 4, 4), np.float32)
    v = _planes(1, 1, 1, 1)
    input_transform(ro(xp), v, 0, 1, 0, 1)
    y = np.empty((1, 1, 2, 2), np.float32)
    m = _planes(1, 1)
    m[:] = 0
    for bias, z in ((np.zeros(1, np.float32), np.zeros((1, 1, 2, 2), np.float32)),
                    (np.empty(0, np.float32), np.empty((0, 0, 0, 0), np.float32))):
        output_transform(ro(m), y, ro(bias), ro(z), 0, 0, 1, 0, 1, 0, 0.0, 0.0, 0.0)
