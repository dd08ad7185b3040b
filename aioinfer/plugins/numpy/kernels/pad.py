"""Padding and cropping: Pad (constant/reflect/edge/wrap, negative pads crop), CenterCropPad."""

from __future__ import annotations

import numpy as np

from ..registry import register

_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _pad(x: np.ndarray, pads, mode: str, value, axes=None) -> np.ndarray:
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes = list(range(x.ndim)) if axes is None else [int(a) % x.ndim for a in np.ravel(axes)]
    n = len(axes)
    width = [[0, 0] for _ in range(x.ndim)]
    for i, axis in enumerate(axes):
        width[axis] = [pads[i], pads[n + i]]
    if any(b < 0 or e < 0 for b, e in width):  # negative pads crop first
        crop = tuple(slice(max(-b, 0), x.shape[k] - max(-e, 0)) for k, (b, e) in enumerate(width))
        x = x[crop]
        width = [[max(b, 0), max(e, 0)] for b, e in width]
    if not any(b or e for b, e in width):
        return x
    if mode == "constant":  # one fill and one copy: much cheaper than np.pad
        flat = np.asarray(0 if value is None else value).reshape(-1)
        out = np.full(
            [d + b + e for d, (b, e) in zip(x.shape, width, strict=True)],
            flat[0] if flat.size else 0, dtype=x.dtype,
        )
        out[tuple(slice(b, b + d) for d, (b, _) in zip(x.shape, width, strict=True))] = x
        return out
    return np.pad(x, width, mode=_MODES[mode])


@register("Pad", since=1)
def pad_1(data, *, paddings, mode="constant", value=0.0):
    return _pad(data, paddings, mode, value)


@register("Pad", since=2)
def pad_2(data, *, pads, mode="constant", value=0.0):
    return _pad(data, pads, mode, value)


@register("Pad", since=11)
def pad_11(data, pads, constant_value=None, axes=None, *, mode="constant"):
    return _pad(data, pads, mode, constant_value, axes)


@register("CenterCropPad", since=18)
def center_crop_pad(input_data, shape, *, axes=None):
    """Crop (centred, extra element off the end) or zero-pad each axis to ``shape``."""
    rank = input_data.ndim
    axes = list(range(rank)) if axes is None else [a % rank for a in axes]
    out_shape = list(input_data.shape)
    src = [slice(None)] * rank
    dst = [slice(None)] * rank
    for axis, target in zip(axes, (int(s) for s in np.ravel(shape)), strict=False):
        dim = input_data.shape[axis]
        out_shape[axis] = target
        if target < dim:
            start = (dim - target) // 2
            src[axis] = slice(start, start + target)
        elif target > dim:
            start = (target - dim) // 2
            dst[axis] = slice(start, start + dim)
    if out_shape == list(input_data.shape):
        return input_data
    out = np.zeros(out_shape, dtype=input_data.dtype)
    out[tuple(dst)] = input_data[tuple(src)]
    return out
