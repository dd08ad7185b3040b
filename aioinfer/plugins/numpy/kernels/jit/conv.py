"""Compiled convolution kernels: depthwise convolutions with their whole epilogue, and the
one-pass epilogue (bias, residual, activation) of the GEMM-based convolutions.

Every output element is computed by the same sequence of IEEE operations whatever the
channel blocks the intra-op threads get, so results do not depend on the split.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import conv_fast, fused
from .._window import out_size, resolve_pads, spatial_defaults
from ..parallel import run_blocks
from . import MIN_WORK
from ._numba import njit, njit_inline, ro

NONE, RELU, LEAKY, CLIP = 0, 1, 2, 3
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
    full plane width, the spare columns cropped in the epilogue): long SIMD loops instead of a
    short one per output row and tap. Summation order per element: bias, then the taps in
    (kh, kw) order.
    """
    n_img, _, height, width = x.shape
    kh_n, kw_n = w.shape[1], w.shape[2]
    oh_n, ow_n = y.shape[2], y.shape[3]
    rows = oh_n + (kh_n - 1) // s + 1  # one spare row: the last runs overhang the plane
    cols = ow_n + (kw_n - 1) // s
    plane = rows * cols
    run = oh_n * cols
    has_z = z.shape[0] > 0
    alpha = y.dtype.type(alpha)
    lo = y.dtype.type(lo)
    hi = y.dtype.type(hi)
    # The padding is the same for every channel: zero the planes once, then copy in only
    # each channel's valid region (per plane row, one run of input columns).
    planes = np.zeros(s * s * plane, dtype=y.dtype)
    acc = np.empty(run, dtype=y.dtype)
    for n in range(n_img):
        for m in range(c0, c1):
            image = x[n, src[m]]
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
                        line = image[i * s + a - ph, j0 * s + bb - pw :: s]
                        part = planes[base + i * cols + j0 : base + i * cols + j1]
                        for j in range(j1 - j0):
                            part[j] = line[j]
            bias = b[m]
            for i in range(run):
                acc[i] = bias
            for kh in range(kh_n):
                for kw in range(kw_n):
                    wv = w[m, kh, kw]
                    start = ((kh % s) * s + kw % s) * plane + (kh // s) * cols + kw // s
                    tap = planes[start : start + run]
                    for i in range(run):
                        acc[i] += wv * tap[i]
            for oh in range(oh_n):
                out = y[n, m, oh]
                row = acc[oh * cols : oh * cols + ow_n]
                if has_z:
                    res = z[n, m, oh]
                    for ow in range(ow_n):
                        out[ow] = act1(row[ow] + res[ow], code, alpha, lo, hi)
                else:
                    for ow in range(ow_n):
                        out[ow] = act1(row[ow], code, alpha, lo, hi)


@njit
def epilogue(y, b, z, g0, g1, m0, m1, p0, p1, code, alpha, lo,
             hi):
    """In place on the block ``y[:, g0:g1, m0:m1, p0:p1]`` of the C-contiguous (N, G, Mg, P)
    product: ``act((y + b[g, m]) + z)`` in one pass (NumPy's epilogue adds the bias, then the
    residual, then activates: the same operations in the same order). ``b`` of size 0 means no
    bias, ``z`` with no batch no residual."""
    has_b = b.shape[0] > 0
    has_z = z.shape[0] > 0
    alpha = y.dtype.type(alpha)
    lo = y.dtype.type(lo)
    hi = y.dtype.type(hi)
    for n in range(y.shape[0]):
        for g in range(g0, g1):
            for m in range(m0, m1):
                row = y[n, g, m, p0:p1]
                bias = b[g, m] if has_b else y.dtype.type(0)
                if has_z:
                    res = z[n, g, m, p0:p1]
                    if has_b:
                        for p in range(p1 - p0):
                            row[p] = act1(row[p] + bias + res[p], code, alpha, lo, hi)
                    else:
                        for p in range(p1 - p0):
                            row[p] = act1(row[p] + res[p], code, alpha, lo, hi)
                elif has_b:
                    for p in range(p1 - p0):
                        row[p] = act1(row[p] + bias, code, alpha, lo, hi)
                else:
                    for p in range(p1 - p0):
                        row[p] = act1(row[p], code, alpha, lo, hi)


# --- the FusedConv kernel of the compiled tier ---------------------------------------------

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NO_Z: dict[np.dtype, np.ndarray] = {}


def _empty(dtype: np.dtype, ndim: int) -> np.ndarray:
    key = (np.dtype(dtype), ndim)
    a = _NO_Z.get(key)
    if a is None:
        a = _NO_Z.setdefault(key, np.empty((0,) * ndim, dtype=dtype))
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


def depthwise(x, w, b, z, act, auto_pad, pads, strides, dilations, shuffle: int,
              into: np.ndarray | None) -> np.ndarray | None:
    """The depthwise 2-D convolution (+ bias, residual, activation) of ``x``, or ``None`` when
    this kernel does not take it (the caller then runs NumPy's)."""
    if (x.ndim != 4 or x.dtype not in _FLOATS or w.dtype != x.dtype or w.shape[1] != 1
            or w.shape[0] % x.shape[1]):
        return None
    kernel = w.shape[2:]
    strides, dilations, pads = spatial_defaults(2, strides, dilations, pads)
    if any(d != 1 for d in dilations) or strides[0] != strides[1]:
        return None
    try:
        code = act_code(act)
    except LookupError:
        code = None
    begin, end = resolve_pads(auto_pad, x.shape[2:], kernel, strides, dilations, pads)
    out = [out_size(*a) for a in zip(x.shape[2:], kernel, strides, dilations, begin, end,
                                       strict=True)]
    n, c = x.shape[:2]
    m = w.shape[0]
    full = (n, m, *out)
    late = z is not None and (z.shape != full or z.dtype != x.dtype)
    y = (np.empty(full, dtype=x.dtype) if into is None or not into.flags.c_contiguous
         else into)
    x = np.ascontiguousarray(x)
    w3 = np.ascontiguousarray(w.reshape(m, *kernel))
    bias = np.zeros(m, dtype=x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    zz = _empty(x.dtype, 4) if z is None or late else np.ascontiguousarray(z)
    run = code if code is not None and not late else (NONE, 0.0, 0.0, 0.0)
    src = ro(_depthwise_source(c, m, shuffle))
    x, w3, bias, zz = ro(x), ro(w3), ro(bias), ro(zz)

    def channels(lo: int, hi: int) -> None:
        depthwise2d(x, w3, bias, zz, y, src, lo, hi, strides[0], begin[0], begin[1], *run)

    run_blocks(channels, m, float(n * m * math.prod(out) * math.prod(kernel)),
               MIN_WORK["depthwise"])
    if late:
        y = conv_fast._epilogue(y, z, act)
    elif code is None:
        y = conv_fast._epilogue(y, None, act)
    if into is not None and y is not into:
        np.copyto(into, y)
        return into
    return y


def fused_conv(x, w, b=None, z=None, into=None, *, auto_pad="NOTSET", dilations=None, group=1,
               kernel_shape=None, pads=None, strides=None, activation="",
               activation_alpha=0.01, clip_min=-np.inf, clip_max=np.inf, shuffle=None,
               into_start=0):
    """``fused.fused_conv`` with compiled depthwise convolutions and epilogues."""
    xs = x
    groups = 0
    if shuffle:
        nb, groups, per, *rest = shuffle
        xs = x.reshape(nb, groups * per, *rest)
    if group > 1 and group == xs.shape[1]:
        act = fused._activation(activation, activation_alpha, clip_min, clip_max)
        dest = None if into is None else into[:, into_start : into_start + w.shape[0]]
        y = depthwise(xs, w, b, z, act, auto_pad, pads, strides, dilations, groups, dest)
        if y is not None:
            return y
    return fused.fused_conv(x, w, b, z, into, auto_pad=auto_pad, dilations=dilations,
                            group=group, kernel_shape=kernel_shape, pads=pads, strides=strides,
                            activation=activation, activation_alpha=activation_alpha,
                            clip_min=clip_min, clip_max=clip_max, shuffle=shuffle,
                            into_start=into_start, epilogue=Epilogue)


def warm(variant: str, keywords: dict[str, Any]) -> None:
    """Compile (or load from the cache) the float32 kernels a ``variant`` step with these
    attributes can call: the depthwise kernel only for grouped convolutions."""
    y4 = np.zeros((1, 1, 1, 4), np.float32)
    epilogue(y4, ro(np.zeros((1, 1), np.float32)), ro(y4.copy()), 0, 1, 0, 1, 0, 4, RELU, 0.0,
             0.0, 0.0)
    if keywords.get("group", 1) == 1:
        return
    x = np.zeros((1, 1, 3, 3), np.float32)
    y = np.empty((1, 1, 3, 3), np.float32)
    depthwise2d(ro(x), ro(np.zeros((1, 3, 3), np.float32)), ro(np.zeros(1, np.float32)),
                ro(_empty(np.float32, 4)), y, ro(np.zeros(1, np.int64)), 0, 1, 1, 1, 1, NONE,
                0.0, 0.0, 0.0)
