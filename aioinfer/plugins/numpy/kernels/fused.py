"""Kernels of the fused ops the graph passes make (domain ``aioinfer``).

Each runs its product (convolution, Gemm, MatMul) and then the absorbed epilogue in place on
the product's own buffer: bias, residual add, activation. No epilogue op allocates.
"""

from __future__ import annotations

import functools

import numpy as np

from ..passes import FUSED_DOMAIN
from ..registry import register
from ._window import shuffle_channels
from .activations import gelu
from .conv_fast import conv_forward
from .normalization import layer_norm_last
from .parallel import matmul

_ZERO_ROWS: dict[tuple[np.dtype, int], np.ndarray] = {}
_ROW = 1024  # merge trailing axes of a contiguous array into rows at least this long


def relu_(y: np.ndarray) -> np.ndarray:
    """``max(y, 0)`` in place, against a row of zeros: NumPy's maximum with a scalar operand
    runs ~2-3x slower than with an array one (measured 40 vs 13-20 us on 100K float32)."""
    rows = y
    if y.size and y.flags.c_contiguous and y.ndim > 1 and y.shape[-1] < _ROW:
        length = 1
        for d in reversed(y.shape):
            length *= d
            if length >= _ROW:
                break
        rows = y.reshape(-1, length)
    key = (y.dtype, rows.shape[-1] if rows.ndim else 1)
    zeros = _ZERO_ROWS.get(key)
    if zeros is None:
        zeros = _ZERO_ROWS.setdefault(key, np.zeros(key[1], dtype=y.dtype))
    np.maximum(rows, zeros, out=rows)
    return y


_GELU = {"Gelu": "none", "GeluTanh": "tanh"}


def activate(y: np.ndarray, activation: str, alpha: float, lo: float, hi: float) -> np.ndarray:
    """Apply ``activation`` to ``y`` (``y`` must own its writable buffer); the result, which is
    ``y`` itself except for Gelu."""
    if activation == "Relu":
        relu_(y)
    elif activation == "LeakyRelu":
        np.multiply(y, y.dtype.type(alpha), out=y, where=y < 0)
    elif activation == "Clip":
        np.clip(y, lo, hi, out=y)
    elif activation in _GELU:
        return gelu(y, approximate=_GELU[activation])  # blocked, into a new buffer
    elif activation:
        raise ValueError(f"unknown fused activation {activation!r}")
    return y


def _activation(activation: str, alpha: float, lo: float, hi: float):
    """``activate`` bound to its parameters, or ``None`` for no activation."""
    if not activation:
        return None
    return functools.partial(activate, activation=activation, alpha=alpha, lo=lo, hi=hi)


def _add_into(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    if z.shape == y.shape or np.broadcast_shapes(z.shape, y.shape) == y.shape:
        np.add(y, z, out=y)
        return y
    return np.add(y, z)


@register("Gelu", since=1, domain=FUSED_DOMAIN)
def fused_gelu(x, *, approximate="none"):
    """GELU written out as elementwise ops in the model (``passes/gelu.py``), at any opset."""
    return gelu(x, approximate=approximate)


@register("ChannelShuffle", since=1, domain=FUSED_DOMAIN)
def channel_shuffle(x, *, shape):
    """``Reshape(x, shape) -> Transpose(0, 2, 1, ...) -> Reshape`` merging axes 1 and 2
    (``passes/channel_shuffle.py``): one strided copy."""
    n, groups, per, *rest = shape
    return shuffle_channels(x.reshape(n, groups * per, *rest), groups)


@register("LayerNorm", since=1, domain=FUSED_DOMAIN)
def fused_layer_norm(x, scale=None, b=None, *, epsilon=1e-5):
    """LayerNorm over the last axis written out as ops in the model (``passes/layer_norm.py``):
    ``(x - mean) / sqrt(var + epsilon) [* scale] [+ b]`` in ``x``'s dtype, as those ops compute
    it."""
    return layer_norm_last(x, scale, b, epsilon)


@register("FusedConv", since=1, domain=FUSED_DOMAIN)
def fused_conv(x, w, b=None, z=None, into=None, *, auto_pad="NOTSET", dilations=None, group=1,
               kernel_shape=None, pads=None, strides=None, activation="",
               activation_alpha=0.01, clip_min=-np.inf, clip_max=np.inf, shuffle=None,
               into_start=0, epilogue=None):
    """Conv(x, w, b) [+ z] [-> activation]; with ``shuffle`` (the 5-D shape of an absorbed
    ``ChannelShuffle``), Conv(ChannelShuffle(x)) with the shuffle done in the padding copy.
    With ``into`` (a Concat's buffer, ``passes/concat_in_place.py``), the result is written into
    its channels ``into_start:into_start + M`` and that view is returned. ``epilogue``: the
    class of the GEMM paths' block epilogue (``conv_fast``; the compiled tier passes its own)."""
    act = _activation(activation, activation_alpha, clip_min, clip_max)
    groups = 0
    if shuffle:
        n, groups, per, *rest = shuffle
        x = x.reshape(n, groups * per, *rest)
    dest = None if into is None else into[:, into_start : into_start + w.shape[0]]
    return conv_forward(x, w, b, auto_pad, dilations, group, pads, strides, z, act, groups,
                        into=dest, epilogue=epilogue)


@register("ChannelSplit", since=1, domain=FUSED_DOMAIN)
def channel_split(x, *, sizes):
    """The outputs of merged sibling convolutions (``passes/sibling_convs.py``): consecutive
    channel slices of ``x``, as views."""
    bounds = np.cumsum([0, *sizes])
    return tuple(x[:, lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))


@register("Empty", since=1, domain=FUSED_DOMAIN, foldable=False)
def empty(*, shape, dtype):
    """An uninitialised buffer (a Concat's output its producers write into): one per run."""
    return np.empty(tuple(shape), dtype=np.dtype(dtype))


@register("ConcatInto", since=1, domain=FUSED_DOMAIN, foldable=False)
def concat_into(buffer, *parts, copy_starts, channels):
    """Finish a Concat along axis 1 whose ``buffer`` some producers already wrote into: copy
    the parts whose ``copy_starts`` entry is a channel offset (not -1); return the first
    ``channels`` channels of ``buffer`` (all of them but in a chain of Concats sharing it)."""
    for part, start in zip(parts, copy_starts, strict=True):
        if start >= 0:
            buffer[:, start : start + part.shape[1]] = part
    return buffer if channels == buffer.shape[1] else buffer[:, :channels]


@register("FusedGemm", since=1, domain=FUSED_DOMAIN)
def fused_gemm(a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=1,
               activation="", activation_alpha=0.01, clip_min=-np.inf, clip_max=np.inf):
    """Gemm(a, b, c) -> activation."""
    y = matmul(a.T if transA else a, b.T if transB else b)
    if alpha != 1.0:
        y *= y.dtype.type(alpha)
    if c is not None and beta != 0.0:
        y = _add_into(y, c if beta == 1.0 else c * c.dtype.type(beta))
    return activate(y, activation, activation_alpha, clip_min, clip_max)


@register("FusedMatMul", since=1, domain=FUSED_DOMAIN)
def fused_matmul(a, b, bias=None, z=None, *, activation="", activation_alpha=0.01,
                 clip_min=-np.inf, clip_max=np.inf):
    """MatMul(a, b) [+ bias] [+ z] [-> activation]."""
    y = matmul(a, b)
    if bias is not None:
        y = _add_into(y, bias)
    if z is not None:
        y = _add_into(y, z)
    return activate(y, activation, activation_alpha, clip_min, clip_max)
