"""CausalConvWithState: stateful causal depthwise 1-D convolution (Mamba / Gated DeltaNet)."""

from __future__ import annotations

import numpy as np

from ..registry import register


@register("CausalConvWithState", since=27)
def causal_conv_with_state(input, weight, bias=None, past_state=None, *, activation="none"):
    """``(output [B, C, L], present_state [B, C, k-1])``; a loop over the k kernel taps."""
    if activation not in ("none", "silu", "swish"):
        raise ValueError(f"unsupported activation {activation!r}")
    batch, channels, length = input.shape
    k = weight.shape[2]
    if past_state is None:
        past_state = np.zeros((batch, channels, k - 1), dtype=input.dtype)
    padded = np.concatenate([past_state.astype(input.dtype, copy=False), input], axis=2)
    acc_dtype = np.float64 if input.dtype == np.float64 else np.float32
    taps = weight[:, 0, :].astype(acc_dtype, copy=False)
    out = np.zeros((batch, channels, length), dtype=acc_dtype)
    for j in range(k):
        out += padded[:, :, j:j + length] * taps[:, j, None]
    if bias is not None:
        out += bias.astype(acc_dtype, copy=False)[:, None]
    if activation != "none":
        out *= 1.0 / (1.0 + np.exp(-out))
    present = padded[:, :, padded.shape[2] - (k - 1):]
    return out.astype(input.dtype, copy=False), np.array(present)
