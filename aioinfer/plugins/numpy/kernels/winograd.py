"""3x3 stride-1 convolutions by Winograd F(2x2, 3x3): 16 GEMMs with 2.25x fewer multiplies.

Each 2x2 output tile is computed from a 4x4 input tile ``d`` as ``A^T [U * (B^T d B)] A`` with
``U = G g G^T`` the transformed 3x3 kernel (made once, at compile time, by the graph pass in
``passes/winograd.py``). The elementwise product summed over input channels is one
batched GEMM ``U (16, M, C) @ V (16, C, tiles)``; the transforms are adds and subtracts of
strided views (B and A hold only 0 and +-1).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..passes import FUSED_DOMAIN
from ..passes.winograd import winograd_weights
from ..registry import register
from .fused import _activation, _add_into
from .parallel import run_blocks

__all__ = ["winograd_conv", "winograd_weights"]

_MIN_TRANSFORM = 2_000_000  # flops: a smaller input transform stays on one thread


def _transform(d0, d1, d2, d3, outs) -> None:
    """B^T along one axis: ``outs`` = (d0 - d2, d1 + d2, d2 - d1, d1 - d3)."""
    np.subtract(d0, d2, out=outs[0])
    np.add(d1, d2, out=outs[1])
    np.subtract(d2, d1, out=outs[2])
    np.subtract(d1, d3, out=outs[3])


def _padded(x: np.ndarray, pads: list[int], tiles: tuple[int, int]) -> np.ndarray:
    """``x`` zero-padded to (N, C, 2 th + 2, 2 tw + 2): the input of every 4x4 tile."""
    n, c, h, w = x.shape
    th, tw = tiles
    xp = np.zeros((n, c, 2 * th + 2, 2 * tw + 2), dtype=x.dtype)
    top, left = pads[0], pads[1]
    hh, ww = min(h, 2 * th + 2 - top), min(w, 2 * tw + 2 - left)
    xp[:, :, top : top + hh, left : left + ww] = x[:, :, :hh, :ww]
    return xp


def _input_transform(xp: np.ndarray, v: np.ndarray) -> None:
    """``v`` (16, C, N, th, tw) = B^T d B of every 4x4 tile of ``xp`` (N, C, 2th+2, 2tw+2)."""
    c, n, th, tw = v.shape[1:]
    s = xp.strides  # tile element (i, j) of every tile: a (n, c, th, tw) view, stride 2
    d = as_strided(xp, (n, c, 4, 4, th, tw), (s[0], s[1], s[2], s[3], 2 * s[2], 2 * s[3]),
                   writeable=False)
    t = np.empty((4, n, c, 4, th, tw), dtype=xp.dtype)
    _transform(d[:, :, 0], d[:, :, 1], d[:, :, 2], d[:, :, 3], t)
    vt = v.transpose(0, 2, 1, 3, 4)  # (16, n, c, th, tw) view
    for i in range(4):
        ti = t[i]
        _transform(ti[:, :, 0], ti[:, :, 1], ti[:, :, 2], ti[:, :, 3], vt[4 * i : 4 * i + 4])


def _output_transform(m: np.ndarray, y: np.ndarray) -> None:
    """``y`` (N, K, th, 2, tw, 2) = A^T M A of every tile of ``m`` (16, K, N * th * tw),
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]."""
    n, k, th, _, tw, _ = y.shape
    m = m.reshape(4, 4, k, n, th, tw)
    r = np.empty((2, 4, k, n, th, tw), dtype=m.dtype)
    np.add(m[0], m[1], out=r[0])
    r[0] += m[2]
    np.subtract(m[1], m[2], out=r[1])
    r[1] -= m[3]
    yt = y.transpose(1, 0, 2, 4, 3, 5)  # (k, n, th, tw, 2, 2)
    for i in range(2):
        ri = r[i]
        np.add(ri[0], ri[1], out=yt[..., i, 0])
        yt[..., i, 0] += ri[2]
        np.subtract(ri[1], ri[2], out=yt[..., i, 1])
        yt[..., i, 1] -= ri[3]


@register("WinogradConv", since=1, domain=FUSED_DOMAIN)
def winograd_conv(x, u, b=None, z=None, *, pads=(1, 1, 1, 1), activation="",
                  activation_alpha=0.01, clip_min=-np.inf, clip_max=np.inf):
    """A 3x3, stride-1, ungrouped Conv(x, w, b) [+ z] [-> activation], ``u`` from
    :func:`winograd_weights`; ``pads`` are explicit (begin_h, begin_w, end_h, end_w).

    With several intra-op threads, a single image with more tiles than output channels is cut
    by tile rows (each thread transforms, multiplies and finishes its own rows); otherwise
    the input transform is cut by input channels and the GEMM, output transform and
    epilogue by output channels (``parallel.run_blocks``).
    """
    n, c, h, w = x.shape
    k = u.shape[1]
    out = (h + pads[0] + pads[2] - 2, w + pads[1] + pads[3] - 2)
    th, tw = tiles = ((out[0] + 1) // 2, (out[1] + 1) // 2)
    count = n * th * tw
    xp = _padded(x, list(pads), tiles)
    y = np.empty((n, k, th, 2, tw, 2), dtype=x.dtype)
    exact = (2 * th, 2 * tw) == out
    zb = z if exact and z is not None and z.shape == (n, k, *out) else None
    act = _activation(activation, activation_alpha, clip_min, clip_max)
    bias = None if b is None else b.reshape(-1, 1, 1).astype(x.dtype, copy=False)
    late = z is not None and zb is None  # a broadcast residual, then the activation, at the end

    def finish(cut: tuple) -> None:
        if not exact:
            return
        yb = y[cut]
        yb = yb.reshape(*yb.shape[:2], 2 * yb.shape[2], 2 * tw)
        if bias is not None:
            yb += bias[cut[1]] if len(cut) == 2 else bias
        if zb is not None:
            yb += zb[cut[:2]] if len(cut) == 2 else zb[:, :, 2 * cut[2].start : 2 * cut[2].stop]
        if act is not None and not late:
            act(yb)

    work = 16.0 * k * c * count
    if n == 1 and th >= 2 and th * tw >= k:
        def tile_rows(lo: int, hi: int) -> None:
            v = np.empty((16, c, 1, hi - lo, tw), dtype=x.dtype)
            _input_transform(xp[:, :, 2 * lo : 2 * hi + 2], v)
            m = np.matmul(u, v.reshape(16, c, -1))
            _output_transform(m, y[:, :, lo:hi])
            finish((slice(None), slice(None), slice(lo, hi)))

        run_blocks(tile_rows, th, work)
    else:
        v = np.empty((16, c, n, th, tw), dtype=x.dtype)
        run_blocks(lambda lo, hi: _input_transform(xp[:, lo:hi], v[:, lo:hi]), c,
                   48.0 * v.size / 16, _MIN_TRANSFORM)
        v2 = v.reshape(16, c, count)

        def channels(lo: int, hi: int) -> None:
            _output_transform(np.matmul(u[:, lo:hi], v2), y[:, lo:hi])
            finish((slice(None), slice(lo, hi)))

        run_blocks(channels, k, work)
    y = y.reshape(n, k, 2 * th, 2 * tw)
    if exact:
        return _after(y, z, act) if late else y
    y = np.ascontiguousarray(y[:, :, : out[0], : out[1]])
    if bias is not None:
        y += bias
    return _after(y, z, act)


def _after(y: np.ndarray, z, act) -> np.ndarray:
    if z is not None:
        y = _add_into(y, z)
    if act is not None:
        act(y)
    return y
