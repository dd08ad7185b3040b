"""Compiled convolution kernels: depthwise convolutions with their whole epilogue, and the
one-pass epilogue (bias, residual, activation) of the GEMM-based convolutions.

Every output element is computed by the same sequence of IEEE operations whatever the
channel blocks the intra-op threads get, so results do not depend on the split.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import conv_fast, fused
from .._window import out_size, resolve_pads, spatial_defaults
from ..parallel import run_blocks
from . import MIN_WORK
from ._numba import njit, njit_inline, ro

NONE, RELU, LEAKY, CLIP = 0, 1, 2, 3
U = np.uint64  # an index numba need not wrap (see depthwise2d)
CODES = {"": NONE, "Relu": RELU, "LeakyRelu": LEAKY, "Clip": CLIP}


@njit_inline
def act1(v, code, alpha, lo, hi):
    """Activation ``code`` of one value (NaN propagates, as through NumPy's maximum and clip).
    Inlined into the loops that call it, where LLVM unswitches the branch on ``code``."""
    if code == RELU:  # lo is 0, typed
        v = lo if v < lo else v
    elif code == LEAKY:
        v = v * alpha if v < 0 else v
    elif code == CLIP:
        v = lo if v < lo else v
        v = hi if v > hi else v
    return v


@njit_inline
def _store_row(acc, at, y, z, n, m, oh, has_z, code, alpha, lo, hi):
    """``y[n, m, oh] = act(acc[at:] (+ z[n, m, oh]))``, element by element (a view costs two
    atomic reference counts), one loop per activation: LLVM does not unswitch a branch on
    ``code`` inside this loop nest, and the branch keeps it scalar."""
    width = y.shape[3]
    if has_z:
        for ow in range(width):
            o = U(ow)
            acc[at + o] = acc[at + o] + z[n, m, oh, o]
    if code == RELU:
        for ow in range(width):
            o = U(ow)
            v = acc[at + o]
            y[n, m, oh, o] = lo if v < lo else v
    elif code == CLIP:
        for ow in range(width):
            o = U(ow)
            v = acc[at + o]
            v = lo if v < lo else v
            y[n, m, oh, o] = hi if v > hi else v
    elif code == LEAKY:
        for ow in range(width):
            o = U(ow)
            v = acc[at + o]
            y[n, m, oh, o] = v * alpha if v < 0 else v
    else:
        for ow in range(width):
            o = U(ow)
            y[n, m, oh, o] = acc[at + o]


@njit
def depthwise2d(x, w, b, z, y, src, c0, c1, s, ph, pw, code, alpha, lo,
                hi):
    """``y[:, m]`` for output channels ``c0 <= m < c1``: input channel ``src[m]`` of ``x``
    (N, C, H, W) convolved with ``w[m]`` (KH, KW) at stride ``s`` (both axes) with begin
    padding ``ph, pw``, plus ``b[m]``, plus ``z[:, m]`` when ``z`` has a batch, then
    activation ``code``.

    Per channel the zero-padded image is copied into ``s * s`` phase planes (rows and columns
    ``a, b`` modulo ``s``) of row length ``PW = OW + (KW - 1) // s``; every kernel tap then
    reads one contiguous run of a plane for all the output rows at once (the output over the
    full plane width, the spare columns cropped in the epilogue): long SIMD loops even at 7x7.
    A 3x3 kernel keeps its nine weights in registers and makes the run in one pass; other
    kernels accumulate it tap by tap. Summation order per element, on both paths: bias,
    then the taps in (kh, kw) order.
    Indices are unsigned (``U``): numba wraps a signed index that might be negative, a select
    per load that keeps LLVM from vectorising; and no slices: a view costs two atomic
    reference counts, and the views per channel and row were most of the time at 7x7.
    """
    n_img, _, height, width = x.shape
    kh_n, kw_n = w.shape[1], w.shape[2]
    oh_n, ow_n = y.shape[2], y.shape[3]
    rows = oh_n + (kh_n - 1) // s + 1  # one spare row: the last runs overhang the plane
    cols = ow_n + (kw_n - 1) // s
    plane = rows * cols
    has_z = z.shape[0] > 0
    alpha = y.dtype.type(alpha)
    lo = y.dtype.type(lo)
    hi = y.dtype.type(hi)
    # The padding is the same for every channel: zero the planes once, then copy in only
    # each channel's valid region (per plane row, one run of input columns).
    planes = np.zeros(s * s * plane, dtype=y.dtype)
    run = oh_n * cols  # the output over the full plane width; spare columns cropped
    acc = np.empty(run, dtype=y.dtype)
    taps = kh_n * kw_n
    start = np.empty(taps, dtype=np.uint64)
    for kh in range(kh_n):
        for kw in range(kw_n):
            start[kh * kw_n + kw] = U(((kh % s) * s + kw % s) * plane + (kh // s) * cols
                                      + kw // s)
    three = kh_n == 3 and kw_n == 3
    for n in range(n_img):
        un = U(n)
        for m in range(c0, c1):
            ci = U(src[m])
            um = U(m)
            for a in range(s):
                # plane row i holds input row i * s + a - ph; valid i: [i0, i1)
                i0 = 0 if a >= ph else (ph - a + s - 1) // s
                i1 = min(rows, (height - 1 + ph - a) // s + 1)
                for bb in range(s):
                    base = (a * s + bb) * plane
                    # input column of plane column j: j * s + bb - pw; valid j: [j0, j1)
                    j0 = 0 if bb >= pw else (pw - bb + s - 1) // s
                    j1 = min(cols, (width - 1 + pw - bb) // s + 1)
                    for i in range(i0, i1):
                        r = U(i * s + a - ph)
                        at = U(base + i * cols)
                        first = U(bb - pw)
                        if s == 1:  # literal strides: LLVM vectorises those copies
                            for j in range(j0, j1):
                                planes[at + U(j)] = x[un, ci, r, first + U(j)]
                        elif s == 2:
                            for j in range(j0, j1):
                                planes[at + U(j)] = x[un, ci, r, first + U(2 * j)]
                        else:
                            for j in range(j0, j1):
                                planes[at + U(j)] = x[un, ci, r, first + U(j * s)]
            bias = b[m]
            if three:
                w0, w1, w2 = w[m, 0, 0], w[m, 0, 1], w[m, 0, 2]
                w3, w4, w5 = w[m, 1, 0], w[m, 1, 1], w[m, 1, 2]
                w6, w7, w8 = w[m, 2, 0], w[m, 2, 1], w[m, 2, 2]
                s0, s1, s2 = start[0], start[1], start[2]
                s3, s4, s5 = start[3], start[4], start[5]
                s6, s7, s8 = start[6], start[7], start[8]
                for ii in range(run):
                    i = U(ii)
                    v = bias + w0 * planes[s0 + i]
                    v += w1 * planes[s1 + i]
                    v += w2 * planes[s2 + i]
                    v += w3 * planes[s3 + i]
                    v += w4 * planes[s4 + i]
                    v += w5 * planes[s5 + i]
                    v += w6 * planes[s6 + i]
                    v += w7 * planes[s7 + i]
                    acc[ii] = v + w8 * planes[s8 + i]
            else:
                for i in range(run):
                    acc[i] = bias
                for t in range(taps):
                    wv = w[m, t // kw_n, t % kw_n]
                    at = start[t]
                    for i in range(run):
                        acc[i] += wv * planes[at + U(i)]
            for oh in range(oh_n):
                _store_row(acc, U(oh * cols), y, z, un, um, U(oh), has_z, code, alpha, lo, hi)


@njit_inline
def act_inplace(v, at, count, code, alpha, lo, hi):
    """``v[at : at + count] = act(v[at : at + count])`` (1-D ``v``), one loop per activation
    (a branch on ``code`` inside the loop keeps it scalar: LLVM does not unswitch it)."""
    if code == RELU:
        for k in range(count):
            i = at + U(k)
            x = v[i]
            v[i] = lo if x < lo else x
    elif code == CLIP:
        for k in range(count):
            i = at + U(k)
            x = v[i]
            x = lo if x < lo else x
            v[i] = hi if x > hi else x
    elif code == LEAKY:
        for k in range(count):
            i = at + U(k)
            x = v[i]
            v[i] = x * alpha if x < 0 else x


@njit
def im2col(x, cols, kh_n, kw_n, s, ph, pw, ow_n, r0, r1):
    """``cols[(c * KH + i) * KW + j, (oh - r0) * OW + ow] = x[0, c, oh s + i - ph, ow s + j - pw]``
    (zero outside the image) for output rows ``r0 <= oh < r1``: the im2col matrix of those
    rows, straight from ``x`` (1, C, H, W), without a padded copy first."""
    _, channels, height, width = x.shape
    run = (r1 - r0) * ow_n
    zero = cols.dtype.type(0)
    for c in range(channels):
        uc = U(c)
        for i in range(kh_n):
            for j in range(kw_n):
                row = U((c * kh_n + i) * kw_n + j)
                # valid output columns: 0 <= ow s + j - pw < width
                lo_w = 0 if j >= pw else (pw - j + s - 1) // s
                hi_w = min(ow_n, (width - 1 + pw - j) // s + 1)
                hi_w = max(hi_w, lo_w)
                for oh in range(r0, r1):
                    at = U((oh - r0) * ow_n)
                    ih = oh * s + i - ph
                    if ih < 0 or ih >= height:
                        for ow in range(ow_n):
                            cols[row, at + U(ow)] = zero
                        continue
                    uh = U(ih)
                    for ow in range(lo_w):
                        cols[row, at + U(ow)] = zero
                    first = U(lo_w * s + j - pw)
                    if s == 1:  # literal strides: LLVM vectorises those copies
                        for k in range(hi_w - lo_w):
                            cols[row, at + U(lo_w + k)] = x[0, uc, uh, first + U(k)]
                    elif s == 2:
                        for k in range(hi_w - lo_w):
                            cols[row, at + U(lo_w + k)] = x[0, uc, uh, first + U(2 * k)]
                    else:
                        for k in range(hi_w - lo_w):
                            cols[row, at + U(lo_w + k)] = x[0, uc, uh, first + U(s * k)]
                    for ow in range(hi_w, ow_n):
                        cols[row, at + U(ow)] = zero
    return run


@njit
def epilogue(y, b, z, g0, g1, m0, m1, p0, p1, code, alpha, lo,
             hi):
    """In place on the block ``y[:, g0:g1, m0:m1, p0:p1]`` of the C-contiguous (N, G, Mg, P)
    product: ``act((y + b[g, m]) + z)`` (NumPy's epilogue adds the bias, then the residual,
    then activates: the same operations in the same order), per row one add pass and one
    activation pass over the row while it is in cache. ``b`` of size 0 means no bias, ``z``
    with no batch no residual. Flat unsigned indices: no views, no wrapping (depthwise2d)."""
    has_b = b.shape[0] > 0
    has_z = z.shape[0] > 0
    alpha = y.dtype.type(alpha)
    lo = y.dtype.type(lo)
    hi = y.dtype.type(hi)
    n_img, groups, per, positions = y.shape
    flat = y.reshape(y.size)
    res = z.reshape(z.size)
    count = p1 - p0
    for n in range(n_img):
        for g in range(g0, g1):
            for m in range(m0, m1):
                at = U(((n * groups + g) * per + m) * positions + p0)
                if has_b:
                    bias = b[g, m]
                    if has_z:
                        for k in range(count):
                            i = at + U(k)
                            flat[i] = flat[i] + bias + res[i]
                    else:
                        for k in range(count):
                            i = at + U(k)
                            flat[i] = flat[i] + bias
                elif has_z:
                    for k in range(count):
                        i = at + U(k)
                        flat[i] = flat[i] + res[i]
                act_inplace(flat, at, count, code, alpha, lo, hi)


# --- the FusedConv kernel of the compiled tier ---------------------------------------------

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NO_Z: dict[np.dtype, np.ndarray] = {}


def _empty(dtype: np.dtype, ndim: int) -> np.ndarray:
    """An empty read-only array (an absent bias or residual): read-only as every input-only
    kernel argument (``ro``), or a run would compile a second signature."""
    key = (np.dtype(dtype), ndim)
    a = _NO_Z.get(key)
    if a is None:
        a = _NO_Z.setdefault(key, ro(np.empty((0,) * ndim, dtype=dtype)))
    return a


def act_code(act: Any) -> tuple[int, float, float, float] | None:
    """(code, alpha, lo, hi) of a ``fused.activate`` partial (``None`` for no activation);
    raises ``LookupError`` for activations with no compiled form (Gelu)."""
    if act is None:
        return NONE, 0.0, 0.0, 0.0
    kw = getattr(act, "keywords", None) or {}
    code = CODES.get(kw.get("activation", "?"))
    if code is None or getattr(act, "func", None) is not fused.activate:
        raise LookupError(kw.get("activation"))
    if code == RELU:
        return RELU, 0.0, 0.0, 0.0
    return code, float(kw["alpha"]), float(kw["lo"]), float(kw["hi"])


class Epilogue:
    """``conv_fast``'s epilogue (bias, residual, activation on one block of the (N, G, Mg, P)
    output) as one compiled pass; NumPy's for blocks it cannot take."""

    def __init__(self, b, zb, act, group: int, mg: int, dtype) -> None:
        self.numpy = conv_fast._Epilogue(b, zb, act, group, mg, dtype)
        self.b = ro(_empty(dtype, 2) if b is None
                    else np.ascontiguousarray(b.reshape(group, mg), dtype=dtype))
        self.zb = zb
        self.z = ro(_empty(dtype, 4) if zb is None else zb)
        try:
            self.code = act_code(act)
        except LookupError:
            self.code = None
        self.act = act

    def __call__(self, y: np.ndarray, cut: tuple) -> None:
        if (self.code is None or y.dtype not in _FLOATS or not y.flags.c_contiguous
                or y.ndim != 4 or (self.zb is not None and (not self.zb.flags.c_contiguous
                                                             or self.zb.dtype != y.dtype))):
            self.numpy(y, cut)
            return
        bounds = [0, y.shape[1], 0, y.shape[2], 0, y.shape[3]]
        if cut[0] is Ellipsis:  # (..., positions)
            bounds[4:] = _bounds(cut[1], y.shape[3])
        else:
            for axis, part in enumerate(cut[1:3], start=1):
                bounds[2 * axis - 2 : 2 * axis] = _bounds(part, y.shape[axis])
        epilogue(y, self.b, self.z, *bounds, *self.code)


def _bounds(part: slice, size: int) -> list[int]:
    lo, hi, _ = part.indices(size)
    return [lo, hi]


def _depthwise_source(c: int, m: int, shuffle: int) -> np.ndarray:
    """Per output channel, the input channel it reads (through ShuffleNet's shuffle)."""
    per = m // c
    ci = np.arange(m, dtype=np.int64) // per
    if shuffle > 1:
        k = c // shuffle  # shuffled channel k' * G + g reads original g * K + k'
        ci = (ci % shuffle) * k + ci // shuffle
    return ci


@dataclasses.dataclass(frozen=True)
class _Depthwise:
    """A depthwise convolution prepared for one input shape and dtype: what ``depthwise2d``
    reads besides ``x`` (kept per plan step, so a run only checks identities)."""

    w: np.ndarray  # the step's weight and bias, to check they are the ones prepared for
    b: np.ndarray | None
    w3: np.ndarray
    bias: np.ndarray
    src: np.ndarray
    stride: int
    begin: tuple[int, int]
    full: tuple[int, ...]
    work: float


def _prepare(x, w, b, auto_pad, pads, strides, dilations, shuffle: int) -> _Depthwise | None:
    """``depthwise2d``'s operands for ``x``'s shape, or ``None`` when it does not take it."""
    if (x.ndim != 4 or x.dtype not in _FLOATS or w.dtype != x.dtype or w.shape[1] != 1
            or w.shape[0] % x.shape[1]):
        return None
    kernel = w.shape[2:]
    strides, dilations, pads = spatial_defaults(2, strides, dilations, pads)
    if any(d != 1 for d in dilations) or strides[0] != strides[1]:
        return None
    begin, end = resolve_pads(auto_pad, x.shape[2:], kernel, strides, dilations, pads)
    out = [out_size(*a) for a in zip(x.shape[2:], kernel, strides, dilations, begin, end,
                                       strict=True)]
    n, c = x.shape[:2]
    m = w.shape[0]
    bias = np.zeros(m, dtype=x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    return _Depthwise(w, b, ro(np.ascontiguousarray(w.reshape(m, *kernel))), ro(bias),
                      ro(_depthwise_source(c, m, shuffle)), int(strides[0]),
                      (int(begin[0]), int(begin[1])), (n, m, *out),
                      float(n * m * math.prod(out) * math.prod(kernel)))


def depthwise(x, w, b, z, act, code, prep: _Depthwise,
              into: np.ndarray | None) -> np.ndarray:
    """The depthwise 2-D convolution (+ bias, residual, activation) of ``x`` as ``prep``
    prepared it; ``code`` is ``act``'s compiled form, ``None`` if it has none."""
    full = prep.full
    late = z is not None and (z.shape != full or z.dtype != x.dtype)
    y = (np.empty(full, dtype=x.dtype) if into is None or not into.flags.c_contiguous
         else into)
    x = ro(x if x.flags.c_contiguous else np.ascontiguousarray(x))
    zz = _empty(x.dtype, 4) if z is None or late else ro(np.ascontiguousarray(z))
    run = code if code is not None and not late else (NONE, 0.0, 0.0, 0.0)
    w3, bias, src, stride, (ph, pw) = prep.w3, prep.bias, prep.src, prep.stride, prep.begin

    def channels(lo: int, hi: int) -> None:
        depthwise2d(x, w3, bias, zz, y, src, lo, hi, stride, ph, pw, *run)

    run_blocks(channels, full[1], prep.work, MIN_WORK["depthwise"], exact=True)
    if late:
        y = conv_fast._epilogue(y, z, act)
    elif code is None:
        y = conv_fast._epilogue(y, None, act)
    if into is not None and y is not into:
        np.copyto(into, y)
        return into
    return y


@dataclasses.dataclass(frozen=True)
class _Windowed:
    """A single-image, ungrouped 2-D convolution with a window (the stems, SqueezeNet's 3x3
    expands) prepared for one input shape: the im2col rows gathered by ``im2col`` straight
    from ``x`` (conv_fast pads a copy, then gathers from a window view of it), then the
    product and the compiled epilogue per block of output rows, as ``conv_fast`` cuts them."""

    w: np.ndarray
    b: np.ndarray | None
    w2: np.ndarray  # (M, C KH KW) read-only
    bias: np.ndarray  # (1, M), or (0, 0): no bias
    kernel: tuple[int, int]
    stride: int
    begin: tuple[int, int]
    out: tuple[int, int]
    work: float


def _prepare_windowed(x, w, b, group, auto_pad, pads, strides, dilations) -> _Windowed | None:
    """The prepared windowed convolution of ``x``'s shape, or ``None`` when conv_fast's row
    path is not the one it would take (or the case is not covered here)."""
    if (x.ndim != 4 or x.shape[0] != 1 or group != 1 or x.dtype not in _FLOATS
            or w.dtype != x.dtype or w.ndim != 4 or w.shape[1] != x.shape[1]
            or (b is not None and (b.dtype != x.dtype or b.size != w.shape[0]))):
        return None
    kernel = w.shape[2:]
    strides, dilations, pads = spatial_defaults(2, strides, dilations, pads)
    if (any(d != 1 for d in dilations) or strides[0] != strides[1]
            or not any(k > 1 for k in kernel)):
        return None
    begin, end = resolve_pads(auto_pad, x.shape[2:], kernel, strides, dilations, pads)
    out = [out_size(*a) for a in zip(x.shape[2:], kernel, strides, dilations, begin, end,
                                       strict=True)]
    c, m = x.shape[1], w.shape[0]
    positions = out[0] * out[1]
    if (min(out) < 1 or out[0] < 2 or positions < m or min(begin) < 0 or min(end) < 0
            or (strides[0] == 1 and c >= conv_fast._SHIFTED_MIN_C
                and m <= conv_fast._SHIFTED_MAX_M)):
        return None  # conv_fast's shifted-rows path, or negative pads: not taken here
    taps = c * kernel[0] * kernel[1]
    bias = _empty(x.dtype, 2) if b is None else ro(np.ascontiguousarray(b.reshape(1, m)))
    work = float(m) * taps * positions + conv_fast._GATHER_COST * taps * positions
    return _Windowed(w, b, ro(np.ascontiguousarray(w.reshape(m, taps))), bias,
                     (int(kernel[0]), int(kernel[1])), int(strides[0]),
                     (int(begin[0]), int(begin[1])), (int(out[0]), int(out[1])), work)


def windowed(x, z, code, prep: _Windowed) -> np.ndarray:
    """``act(conv(x) + b + z)`` of a C-contiguous single image as ``prep`` prepared it."""
    m, taps = prep.w2.shape
    oh, ow = prep.out
    y = np.empty((1, 1, m, oh * ow), dtype=x.dtype)
    zz = _empty(x.dtype, 4) if z is None else ro(z.reshape(1, 1, m, oh * ow))
    xs = ro(x)
    w2, bias = prep.w2, prep.bias
    (kh, kw), s, (ph, pw) = prep.kernel, prep.stride, prep.begin

    def rows(lo: int, hi: int) -> None:
        cols = np.empty((taps, (hi - lo) * ow), dtype=x.dtype)
        im2col(xs, cols, kh, kw, s, ph, pw, ow, lo, hi)
        np.matmul(w2, cols, out=y[0, 0, :, lo * ow : hi * ow])
        epilogue(y, bias, zz, 0, 1, 0, m, lo * ow, hi * ow, *code)

    run_blocks(rows, oh, prep.work)
    return y.reshape(1, m, oh, ow)


@dataclasses.dataclass(frozen=True)
class _Pointwise:
    """A 1x1, stride-1, unpadded convolution prepared for one input shape and dtype: the
    grouped product ``W (G, Mg, Cg) @ x (N, G, Cg, P)`` and its compiled epilogue, as
    ``conv_fast`` runs it (same operands, same cut), minus its per-call set-up."""

    w: np.ndarray
    b: np.ndarray | None
    w3: np.ndarray
    bias: np.ndarray  # (G, Mg), or (0, 0): no bias
    split: tuple[int, int, int, int]  # N, G, Cg, P
    full: tuple[int, ...]
    work: float


def _prepare_pointwise(x, w, b, group, auto_pad, pads, strides, dilations) -> _Pointwise | None:
    """The prepared pointwise convolution of ``x``'s shape, or ``None`` for other convs."""
    kernel = w.shape[2:]
    if (x.ndim < 3 or x.dtype not in _FLOATS or w.dtype != x.dtype or any(k != 1 for k in kernel)
            or x.shape[1] != w.shape[1] * group or w.shape[0] % group
            or (b is not None and (b.dtype != x.dtype or b.size != w.shape[0]))):
        return None
    n_sp = x.ndim - 2
    strides, dilations, pads = spatial_defaults(n_sp, strides, dilations, pads)
    begin, end = resolve_pads(auto_pad, x.shape[2:], kernel, strides, dilations, pads)
    if any(v != 1 for v in strides) or any(begin) or any(end):
        return None
    n, m = x.shape[0], w.shape[0]
    mg, cg = m // group, w.shape[1]
    positions = math.prod(x.shape[2:])
    bias = (_empty(x.dtype, 2) if b is None
            else ro(np.ascontiguousarray(b.reshape(group, mg))))
    return _Pointwise(w, b, ro(np.ascontiguousarray(w.reshape(group, mg, cg))), bias,
                      (n, group, cg, positions), (n, m, *x.shape[2:]),
                      float(m) * cg * positions * n)


def pointwise(x, z, code, prep: _Pointwise) -> np.ndarray:
    """``act(W x + b + z)`` of a C-contiguous ``x`` as ``prep`` prepared it: the product and
    the epilogue per block of output channels, cut over the intra-op threads."""
    n, group, cg, positions = prep.split
    mg = prep.w3.shape[1]
    y = np.empty((n, group, mg, positions), dtype=x.dtype)
    xs = x.reshape(n, group, cg, positions)
    zz = _empty(x.dtype, 4) if z is None else ro(z.reshape(n, group, mg, positions))
    w3, bias = prep.w3, prep.bias
    finish = z is not None or bias.shape[0] > 0 or code[0] != NONE

    def channels(lo: int, hi: int) -> None:
        np.matmul(w3[:, lo:hi], xs, out=y[:, :, lo:hi])
        if finish:
            epilogue(y, bias, zz, 0, group, lo, hi, 0, positions, *code)

    run_blocks(channels, mg, prep.work)
    return y.reshape(prep.full)


def _kept(steps: dict | None, key: tuple, w, b, make: Callable[[], Any]) -> Any:
    """What ``make()`` prepares for this step's ``key`` (its input shape), kept in the step's
    ``steps`` while the weight and bias are the same objects; ``None`` (not taken) is kept
    too, so a convolution no compiled path takes pays one lookup."""
    entry = None if steps is None else steps.get(key)
    if entry is None or entry[0] is not w or entry[1] is not b:
        entry = (w, b, make())
        if steps is not None:
            if len(steps) >= 16:
                steps.clear()
            steps[key] = entry
    return entry[2]


def fused_conv(x, w, b=None, z=None, into=None, *, auto_pad="NOTSET", dilations=None, group=1,
               kernel_shape=None, pads=None, strides=None, activation="",
               activation_alpha=0.01, clip_min=-np.inf, clip_max=np.inf, shuffle=None,
               into_start=0, _steps=None):
    """``fused.fused_conv`` with compiled depthwise convolutions, single-image windowed and
    1x1 convolutions and epilogues. ``_steps`` (bound per plan step, see ``PER_STEP``) keeps
    each step's prepared operands per input shape: the generic path's set-up costs ~25 us a
    call, as much as the whole product of a small 1x1 convolution."""
    xs = x
    groups = 0
    if shuffle:
        nb, groups, per, *rest = shuffle
        xs = x.reshape(nb, groups * per, *rest)
    if group > 1 and group == xs.shape[1]:
        prep = _kept(_steps, ("depthwise", xs.shape, xs.dtype), w, b, lambda: _prepare(
            xs, w, b, auto_pad, pads, strides, dilations, groups))
        if prep is not None:
            act = fused._activation(activation, activation_alpha, clip_min, clip_max)
            try:
                code = act_code(act)
            except LookupError:
                code = None
            dest = None if into is None else into[:, into_start : into_start + w.shape[0]]
            return depthwise(xs, w, b, z, act, code, prep, dest)
    elif not shuffle and into is None and x.flags.c_contiguous and activation in CODES:
        code = CODES[activation]
        run = ((RELU, 0.0, 0.0, 0.0) if code == RELU else
               (code, float(activation_alpha), float(clip_min), float(clip_max)))
        point = _kept(_steps, ("pointwise", x.shape, x.dtype), w, b, lambda: _prepare_pointwise(
            x, w, b, group, auto_pad, pads, strides, dilations))
        if point is not None:
            if z is None or (z.shape == point.full and z.dtype == x.dtype
                             and z.flags.c_contiguous):
                return pointwise(x, z, run, point)
        else:
            win = _kept(_steps, ("windowed", x.shape, x.dtype), w, b, lambda: _prepare_windowed(
                x, w, b, group, auto_pad, pads, strides, dilations))
            if win is not None and (z is None or (
                    z.shape == (1, w.shape[0], *win.out) and z.dtype == x.dtype
                    and z.flags.c_contiguous)):
                return windowed(x, z, run, win)
    return fused.fused_conv(x, w, b, z, into, auto_pad=auto_pad, dilations=dilations,
                            group=group, kernel_shape=kernel_shape, pads=pads, strides=strides,
                            activation=activation, activation_alpha=activation_alpha,
                            clip_min=clip_min, clip_max=clip_max, shuffle=shuffle,
                            into_start=into_start, epilogue=Epilogue)


#: variants here taking a per-step dict (``_steps``) for what they prepare per input shape
PER_STEP = frozenset({"fused_conv"})


def warm(variant: str, keywords: dict[str, Any]) -> None:
    """Compile (or load from the cache) the float32 kernels a ``variant`` step with these
    attributes can call: im2col for ungrouped windowed convolutions, the depthwise kernel
    only for grouped ones."""
    y4 = np.zeros((1, 1, 1, 4), np.float32)
    epilogue(y4, ro(np.zeros((1, 1), np.float32)), ro(y4.copy()), 0, 1, 0, 1, 0, 4, RELU, 0.0,
             0.0, 0.0)
    if keywords.get("group", 1) == 1:
        if any(k > 1 for k in keywords.get("kernel_shape") or (3,)):
            im2col(ro(np.zeros((1, 1, 3, 3), np.float32)), np.empty((9, 9), np.float32), 3, 3,
                   1, 1, 1, 3, 0, 3)
        return
    x = np.zeros((1, 1, 3, 3), np.float32)
    y = np.empty((1, 1, 3, 3), np.float32)
    depthwise2d(ro(x), ro(np.zeros((1, 3, 3), np.float32)), ro(np.zeros(1, np.float32)),
                ro(_empty(np.float32, 4)), y, ro(np.zeros(1, np.int64)), 0, 1, 1, 1, 1, NONE,
                0.0, 0.0, 0.0)
