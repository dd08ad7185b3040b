"""Attention's ``Softmax(Where(mask, Div(scores, d)))`` as one compiled step.

:func:`fuse` rewrites a plan's chains ``Div(x, scalar constant) -> [MaskedFill] -> Softmax``
(last axis) whose intermediates nothing else reads into one step running
:func:`masked_softmax`: per row the division, the mask select and the softmax in one pass,
where the plan made three kernels and two full-size intermediates. Each element gets the
same operations as in the three steps (a true division, then the select, then
``jit/softmax``'s row softmax), so the fused step's result equals the unfused compiled
tier's. Cases the kernel does not take (not 4-D, not float32, the axis not last) run the
three original kernels.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ..parallel import run_blocks
from . import MIN_WORK
from ._math import exp1
from ._numba import njit, ro
from .normalization import lane_sum
from .softmax import lane_max

_DIV = "aioinfer.plugins.numpy.kernels.elementwise.div"
_MASKED = "aioinfer.plugins.numpy.kernels.masked.masked_fill"
_SOFTMAX = "aioinfer.plugins.numpy.kernels.softmax.softmax"
NO_MASK, FILL_WHERE_SET, FILL_WHERE_CLEAR = 0, 1, 2


@njit
def masked_softmax_rows(x, mask, value, divisor, mode, r0, r1, y):
    """Rows ``r0:r1`` (flat over the leading three axes) of ``y`` (B, H, T, S) = softmax of
    ``x / divisor`` with ``value`` where ``mask`` (B, H, T, S, any strides) is set
    (``mode`` FILL_WHERE_SET), clear (FILL_WHERE_CLEAR), or no mask (NO_MASK)."""
    _, heads, t_n, s_n = x.shape
    for r in range(r0, r1):
        b = r // (heads * t_n)
        h = (r // t_n) % heads
        t = r % t_n
        row = x[b, h, t]
        out = y[b, h, t]
        for i in range(s_n):
            out[i] = row[i] / divisor
        if mode != NO_MASK:
            keep = mask[b, h, t]
            if mode == FILL_WHERE_SET:
                for i in range(s_n):
                    out[i] = value if keep[i] else out[i]
            else:
                for i in range(s_n):
                    out[i] = out[i] if keep[i] else value
        m = lane_max(out)
        for i in range(s_n):
            out[i] = exp1(out[i] - m)
        inv = np.float32(1.0) / lane_sum(out)
        for i in range(s_n):
            out[i] = out[i] * inv


_F32 = np.dtype(np.float32)


def masked_softmax(x, mask=None, value=None, *, divisor, invert, axis, unfused):
    """The fused step: ``unfused(x, mask, value)`` runs the original kernels."""
    if (x.ndim != 4 or x.dtype != _F32 or axis not in (-1, 3) or x.shape[-1] == 0
            or (mask is not None and (value is None or value.dtype != _F32 or value.size != 1
                                      or np.broadcast_shapes(mask.shape, x.shape) != x.shape))):
        return unfused(x, mask, value)
    xc = ro(np.ascontiguousarray(x))
    y = np.empty(x.shape, dtype=np.float32)
    if mask is None:
        mode, m4, fill = NO_MASK, np.zeros((1, 1, 1, 1), dtype=bool), np.float32(0)
        m4 = np.broadcast_to(m4, x.shape)
    else:
        mode = FILL_WHERE_CLEAR if invert else FILL_WHERE_SET
        m4 = np.broadcast_to(mask.astype(bool, copy=False), x.shape)
        fill = np.float32(value.reshape(()))
    rows = x.shape[0] * x.shape[1] * x.shape[2]

    def block(lo: int, hi: int) -> None:
        masked_softmax_rows(xc, m4, fill, divisor, mode, lo, hi, y)

    run_blocks(block, rows, float(x.size) * 8, MIN_WORK["rows"], exact=True)
    return y


def _unfused(div: Callable[..., Any], d: np.ndarray, masked: Callable[..., Any] | None,
             softmax: Callable[..., Any], x, mask, value):
    y = div(x, d)
    if masked is not None:
        y = masked(y, mask, value)
    return softmax(y)


def fuse(plan: Any, name_of: Callable[[Any], str]) -> Any:
    """``plan`` with its Div -> [MaskedFill] -> Softmax chains fused (a new Plan when any
    were; ``plan`` itself otherwise). ``name_of`` names a step's kernel."""
    steps = list(plan.steps)
    readers: dict[int, int] = {}
    producer: dict[int, int] = {}
    for index, step in enumerate(steps):
        for slot in step.ins:
            if slot is not None:
                readers[slot] = readers.get(slot, 0) + 1
        for slot in step.outs:
            producer[slot] = index
    kept = set(plan.output_slots)

    def private(slot: int | None) -> int | None:
        """The step making ``slot`` when only one step reads it and it is no output."""
        if slot is None or slot in kept or readers.get(slot) != 1:
            return None
        return producer.get(slot)

    drop: set[int] = set()
    for index, step in enumerate(steps):
        if name_of(step.fn) != _SOFTMAX or len(step.ins) != 1:
            continue
        axis = step.fn.keywords.get("axis", -1) if isinstance(step.fn, functools.partial) else -1
        first = private(step.ins[0])
        if first is None:
            continue
        masked = None
        mask_ins: tuple = ()
        div_at: int | None = first
        if name_of(steps[first].fn) == _MASKED and len(steps[first].ins) == 3:
            masked = steps[first]
            mask_ins = masked.ins[1:]
            div_at = private(masked.ins[0])
        if div_at is None:
            continue
        div = steps[div_at]
        if name_of(div.fn) != _DIV or len(div.ins) != 2:
            continue
        d = plan.constants.get(div.ins[1])
        if d is None or getattr(d, "dtype", None) != _F32 or d.size != 1:
            continue
        invert = masked.fn.keywords.get("invert", 0) if masked is not None else 0
        unfused = functools.partial(_unfused, div.fn, d, masked.fn if masked else None, step.fn)
        fn = functools.partial(masked_softmax, divisor=np.float32(d.reshape(())), invert=invert,
                               axis=axis, unfused=unfused)
        steps[index] = dataclasses.replace(step, fn=fn, ins=(div.ins[0], *mask_ins),
                                           op_type="MaskedSoftmax")
        drop.add(div_at)
        if masked is not None:
            drop.add(first)
    if not drop:
        return plan
    return dataclasses.replace(plan, steps=[s for k, s in enumerate(steps) if k not in drop])


def warm(variant: str, keywords: dict[str, Any]) -> None:
    """Compile (or load from the cache) the float32 kernel of this module."""
    x = np.zeros((1, 1, 1, 4), np.float32)
    m = np.broadcast_to(np.zeros((1, 1, 1, 1), bool), x.shape)
    masked_softmax_rows(ro(x), m, np.float32(0), np.float32(1), NO_MASK, 0, 1, np.empty_like(x))
