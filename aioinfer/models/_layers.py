"""Transformer pieces emitted node by node the way torch.onnx exports Hugging Face models."""

from __future__ import annotations

import math

import numpy as np

from ._graph import GraphBuilder

LAYER_NORMS = ("decomposed", "fused")
GELUS = ("erf", "tanh", "fused")


def check_choices(opset: int, layer_norm: str, gelu: str) -> None:
    """Reject unknown variants, and ops newer than the requested opset."""
    if layer_norm not in LAYER_NORMS:
        raise ValueError(f"layer_norm must be one of {LAYER_NORMS}, got {layer_norm!r}")
    if gelu not in GELUS:
        raise ValueError(f"gelu must be one of {GELUS}, got {gelu!r}")
    if layer_norm == "fused" and opset < 17:
        raise ValueError(f"layer_norm='fused' (LayerNormalization) needs opset >= 17, got {opset}")
    if gelu == "fused" and opset < 20:
        raise ValueError(f"gelu='fused' (Gelu) needs opset >= 20, got {opset}")


def linear(g: GraphBuilder, x: str, name: str, fan_in: int, fan_out: int) -> str:
    """``x @ W + b`` as MatMul + Add (torch exports 3-D ``nn.Linear`` this way)."""
    w = g.weight(f"{name}.weight", [fan_in, fan_out], std=0.02 * math.sqrt(768 / fan_in))
    b = g.tensor(f"{name}.bias", g.rng.normal(0, 0.02, fan_out).astype(np.float32))
    return g.op("Add", g.op("MatMul", x, w), b)


def layer_norm(g: GraphBuilder, x: str, name: str, hidden: int, mode: str, opset: int,
               eps: float = 1e-5) -> str:
    """LayerNormalization over the last axis, fused or as ReduceMean/Sub/Pow/Sqrt/Div."""
    gamma = g.tensor(f"{name}.weight", g.rng.uniform(0.8, 1.2, hidden).astype(np.float32))
    beta = g.tensor(f"{name}.bias", g.rng.normal(0, 0.05, hidden).astype(np.float32))
    if mode == "fused":
        return g.op("LayerNormalization", x, gamma, beta, axis=-1, epsilon=eps)
    mean = _reduce_mean(g, x, opset)
    centered = g.op("Sub", x, mean)
    var = _reduce_mean(g, g.op("Pow", centered, g.scalar(2.0)), opset)
    std = g.op("Sqrt", g.op("Add", var, g.scalar(eps)))
    normed = g.op("Div", centered, std)
    return g.op("Add", g.op("Mul", normed, gamma), beta)


def _reduce_mean(g: GraphBuilder, x: str, opset: int) -> str:
    if opset >= 18:  # axes became an input in opset 18
        return g.op("ReduceMean", x, g.const([-1]), keepdims=1)
    return g.op("ReduceMean", x, axes=[-1], keepdims=1)


def gelu(g: GraphBuilder, x: str, mode: str) -> str:
    """GELU: the fused op, the exact Erf form, or GPT-2's tanh approximation."""
    if mode == "fused":
        return g.op("Gelu", x)
    if mode == "erf":
        erf = g.op("Erf", g.op("Div", x, g.scalar(math.sqrt(2.0))))
        return g.op("Mul", g.op("Mul", x, g.op("Add", erf, g.scalar(1.0))), g.scalar(0.5))
    cube = g.op("Mul", g.op("Pow", x, g.scalar(3.0)), g.scalar(0.044715))
    inner = g.op("Mul", g.op("Add", x, cube), g.scalar(math.sqrt(2.0 / math.pi)))
    one_plus = g.op("Add", g.op("Tanh", inner), g.scalar(1.0))
    return g.op("Mul", g.op("Mul", x, g.scalar(0.5)), one_plus)


def dim(g: GraphBuilder, x: str, axis: int) -> str:
    """Dimension ``axis`` of ``x`` as an int64 scalar: Shape then Gather."""
    return g.op("Gather", g.op("Shape", x), g.const(axis), axis=0)


def as_1d(g: GraphBuilder, scalar: str) -> str:
    return g.op("Unsqueeze", scalar, g.const([0]))


def split_heads(g: GraphBuilder, x: str, heads: int, head_dim: int) -> str:
    """``[B, S, H]`` -> ``[B, heads, S, head_dim]`` via a Shape/Gather/Concat/Reshape chain."""
    batch, seq = as_1d(g, dim(g, x, 0)), as_1d(g, dim(g, x, 1))
    shape = g.op("Concat", batch, seq, g.const([heads]), g.const([head_dim]), axis=0)
    return g.op("Transpose", g.op("Reshape", x, shape), perm=[0, 2, 1, 3])


def merge_heads(g: GraphBuilder, x: str, hidden: int) -> str:
    """``[B, heads, S, head_dim]`` -> ``[B, S, H]``."""
    x = g.op("Transpose", x, perm=[0, 2, 1, 3])
    batch, seq = as_1d(g, dim(g, x, 0)), as_1d(g, dim(g, x, 1))
    shape = g.op("Concat", batch, seq, g.const([hidden]), axis=0)
    return g.op("Reshape", x, shape)


def attention_scores(g: GraphBuilder, q: str, k_t: str, head_dim: int) -> str:
    """``q @ k^T / sqrt(head_dim)``: a 4-D broadcast MatMul."""
    return g.op("Div", g.op("MatMul", q, k_t), g.scalar(math.sqrt(head_dim)))


def masked_softmax(g: GraphBuilder, scores: str, cond: str, *, keep: bool) -> str:
    """Softmax over keys, masked with ``Where``: ``cond`` marks the kept positions when
    ``keep`` (GPT-2's causal mask), the masked ones otherwise (BERT's padding mask)."""
    fill = g.scalar(float(np.finfo(np.float32).min))
    args = (cond, scores, fill) if keep else (cond, fill, scores)
    return g.op("Softmax", g.op("Where", *args), axis=-1)
