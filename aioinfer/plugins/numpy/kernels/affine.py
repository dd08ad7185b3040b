"""The ``ChannelAffine`` kernel (domain ``aioinfer``): ``x * scale + shift`` per channel, then an
optional activation, in place on one output buffer, channels cut over the intra-op threads."""

from __future__ import annotations

import numpy as np

from ..passes import FUSED_DOMAIN
from ..registry import register
from .fused import activate
from .parallel import run_blocks

_MIN_WORK = 200_000  # elements: a smaller map stays on one thread


@register("ChannelAffine", since=1, domain=FUSED_DOMAIN)
def channel_affine(x, scale, shift, *, activation="", activation_alpha=0.01, clip_min=-np.inf,
                   clip_max=np.inf):
    """``activation(x * scale + shift)``, ``scale`` and ``shift`` (C,) or (1,) along axis 1."""
    if x.ndim < 2 or scale.size == 1:
        y = np.multiply(x, scale.reshape(()) if scale.size == 1 else scale)
        y += shift.reshape(()) if shift.size == 1 else shift
        return activate(y, activation, activation_alpha, clip_min, clip_max)
    shape = (-1, *([1] * (x.ndim - 2)))
    a, c = scale.reshape(shape), shift.reshape(shape)
    y = np.empty(x.shape, dtype=np.result_type(x, scale))

    def block(lo: int, hi: int) -> None:
        yb = y[:, lo:hi]
        np.multiply(x[:, lo:hi], a[lo:hi], out=yb)
        yb += c[lo:hi]
        activate(yb, activation, activation_alpha, clip_min, clip_max)

    run_blocks(block, x.shape[1], float(x.size), _MIN_WORK, exact=True)
    return y
