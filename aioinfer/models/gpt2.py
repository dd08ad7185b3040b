"""A GPT-2-like decoder with a KV cache, emitted the way torch.onnx exports Hugging Face
``GPT2LMHeadModel`` with ``use_cache=True``."""

from __future__ import annotations

import numpy as np
import onnx

from . import _layers as L
from ._graph import FLOAT, INT64, GraphBuilder


def gpt2_like(
    *,
    vocab_size: int = 1000,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 4,
    max_positions: int = 128,
    batch: int = 1,
    seq: int = 32,
    past: int = 16,
    layer_norm: str = "fused",
    gelu: str = "tanh",
    opset: int = 17,
    seed: int = 0,
) -> onnx.ModelProto:
    """A pre-LayerNorm causal decoder with tied input/output embeddings and a KV cache.

    Inputs: ``input_ids`` int64 ``[batch, sequence]`` and, per layer ``i``, ``past_key_{i}`` /
    ``past_value_{i}`` float32 ``[batch, heads, past_sequence, head_dim]`` (``past_sequence``
    may be 0). Outputs: ``logits`` ``[batch, sequence, vocab_size]`` and ``present_key_{i}`` /
    ``present_value_{i}`` ``[batch, heads, past_sequence + sequence, head_dim]``: the past
    Concat-ed with this step's keys and values. Positions start at ``past_sequence``; the causal
    mask is a slice of a lower-triangular bool buffer applied with ``Where``. ``batch``, ``seq``
    and ``past`` only set the example shapes.
    """
    L.check_choices(opset, layer_norm, gelu)
    if hidden % heads:
        raise ValueError(f"gpt2_like: hidden ({hidden}) must be divisible by heads ({heads})")
    if past + seq > max_positions:
        raise ValueError(f"gpt2_like: past + seq ({past + seq}) exceeds max_positions "
                         f"({max_positions})")
    head_dim = hidden // heads
    g = GraphBuilder("gpt2_like", seed)
    ids = g.input("input_ids", INT64, ["batch", "sequence"], [batch, seq], high=vocab_size)
    cache_dims: list[int | str] = ["batch", heads, "past_sequence", head_dim]
    pasts = [(g.input(f"past_key_{k}", FLOAT, cache_dims, [batch, heads, past, head_dim]),
              g.input(f"past_value_{k}", FLOAT, cache_dims, [batch, heads, past, head_dim]))
             for k in range(layers)]

    g.scope("transformer")
    wte = g.weight("transformer.wte.weight", [vocab_size, hidden], std=0.5)
    past_len = L.dim(g, pasts[0][0], 2)
    positions = g.op("Range", past_len, g.op("Add", past_len, L.dim(g, ids, 1)), g.const(1))
    wpe = g.weight("transformer.wpe.weight", [max_positions, hidden], std=0.1)
    x = g.op("Add", g.op("Gather", wte, ids), g.op("Gather", wpe, positions))
    causal = g.tensor("transformer.h.attn.bias",
                      np.tril(np.ones((max_positions, max_positions), bool))[None, None])

    presents = []
    for k, (past_key, past_value) in enumerate(pasts):
        g.scope(f"transformer/h.{k}/attn")
        name = f"transformer.h.{k}"
        h = L.layer_norm(g, x, f"{name}.ln_1", hidden, layer_norm, opset)
        qkv = L.linear(g, h, f"{name}.attn.c_attn", hidden, 3 * hidden)
        q, key, v = g.op("Split", qkv, g.const([hidden] * 3), axis=2, outputs=3)
        q = L.split_heads(g, q, heads, head_dim)
        key = g.op("Concat", past_key, L.split_heads(g, key, heads, head_dim), axis=2)
        v = g.op("Concat", past_value, L.split_heads(g, v, heads, head_dim), axis=2)
        presents += [(key, f"present_key_{k}"), (v, f"present_value_{k}")]
        scores = L.attention_scores(g, q, g.op("Transpose", key, perm=[0, 1, 3, 2]), head_dim)
        # causal[:, :, total - seq : total, :total], as HF slices its `bias` buffer.
        total, query_len = L.as_1d(g, L.dim(g, key, 2)), L.as_1d(g, L.dim(g, q, 2))
        rows = g.op("Slice", causal, g.op("Sub", total, query_len), total, g.const([2]))
        mask = g.op("Slice", rows, g.const([0]), total, g.const([3]))
        probs = L.masked_softmax(g, scores, mask, keep=True)
        ctx = L.merge_heads(g, g.op("MatMul", probs, v), hidden)
        x = g.op("Add", x, L.linear(g, ctx, f"{name}.attn.c_proj", hidden, hidden))
        g.scope(f"transformer/h.{k}/mlp")
        h = L.layer_norm(g, x, f"{name}.ln_2", hidden, layer_norm, opset)
        h = L.gelu(g, L.linear(g, h, f"{name}.mlp.c_fc", hidden, 4 * hidden), gelu)
        x = g.op("Add", x, L.linear(g, h, f"{name}.mlp.c_proj", 4 * hidden, hidden))

    g.scope("lm_head")
    x = L.layer_norm(g, x, "transformer.ln_f", hidden, layer_norm, opset)
    logits = g.op("MatMul", x, g.op("Transpose", wte, perm=[1, 0]))
    g.scope("")
    g.output(logits, "logits", FLOAT, ["batch", "sequence", vocab_size])
    present_dims: list[int | str] = ["batch", heads, "total_sequence", head_dim]
    for value, out in presents:
        g.output(value, out, FLOAT, present_dims)
    return g.build(opset, doc="aioinfer.models.gpt2_like: GPT-2-style decoder with KV cache")
