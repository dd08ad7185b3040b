"""A BERT-like encoder, emitted the way torch.onnx exports Hugging Face ``BertModel``."""

from __future__ import annotations

import numpy as np
import onnx

from . import _layers as L
from ._graph import FLOAT, INT64, GraphBuilder


def bert_like(
    *,
    vocab_size: int = 1000,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 4,
    intermediate: int | None = None,
    max_positions: int = 512,
    batch: int = 1,
    seq: int = 32,
    layer_norm: str = "decomposed",
    gelu: str = "erf",
    opset: int = 17,
    seed: int = 0,
) -> onnx.ModelProto:
    """A post-LayerNorm transformer encoder with a pooler.

    Inputs (int64, dynamic ``[batch, sequence]``): ``input_ids`` in ``[0, vocab_size)``,
    ``attention_mask`` (0 masks a key position out, via ``Where``) and ``token_type_ids`` in
    ``{0, 1}``. Outputs: ``last_hidden_state`` ``[batch, sequence, hidden]`` and
    ``pooler_output`` ``[batch, hidden]``. ``batch`` and ``seq`` only set the example shapes.
    ``layer_norm`` is ``"decomposed"`` (ReduceMean/Sub/Pow/Sqrt/Div) or ``"fused"``
    (LayerNormalization); ``gelu`` is ``"erf"``, ``"tanh"`` or ``"fused"`` (Gelu, opset >= 20).
    """
    L.check_choices(opset, layer_norm, gelu)
    if hidden % heads:
        raise ValueError(f"bert_like: hidden ({hidden}) must be divisible by heads ({heads})")
    if seq > max_positions:
        raise ValueError(f"bert_like: seq ({seq}) exceeds max_positions ({max_positions})")
    head_dim, inner = hidden // heads, intermediate or 4 * hidden
    g = GraphBuilder("bert_like", seed)
    dims = ["batch", "sequence"]
    ids = g.input("input_ids", INT64, dims, [batch, seq], high=vocab_size)
    mask = g.input("attention_mask", INT64, dims, [batch, seq], high=2)
    types = g.input("token_type_ids", INT64, dims, [batch, seq], high=2)

    g.scope("embeddings")
    x = g.op("Gather", g.weight("embeddings.word_embeddings.weight", [vocab_size, hidden],
                                std=0.02 * 20), ids)
    positions = g.op("Range", g.const(0), L.dim(g, ids, 1), g.const(1))
    pos_table = g.weight("embeddings.position_embeddings.weight", [max_positions, hidden],
                         std=0.02 * 20)
    x = g.op("Add", x, g.op("Gather", pos_table, positions))
    type_table = g.weight("embeddings.token_type_embeddings.weight", [2, hidden], std=0.02 * 20)
    x = g.op("Add", x, g.op("Gather", type_table, types))
    x = L.layer_norm(g, x, "embeddings.LayerNorm", hidden, layer_norm, opset, eps=1e-12)
    # [B, S] -> [B, 1, 1, S]: True where a key position is padding.
    padding = g.op("Equal", g.op("Unsqueeze", mask, g.const([1, 2])), g.const(0))

    for k in range(layers):
        g.scope(f"encoder/layer.{k}/attention")
        name = f"encoder.layer.{k}"
        q = L.split_heads(g, L.linear(g, x, f"{name}.attention.self.query", hidden, hidden),
                          heads, head_dim)
        key = L.split_heads(g, L.linear(g, x, f"{name}.attention.self.key", hidden, hidden),
                            heads, head_dim)
        v = L.split_heads(g, L.linear(g, x, f"{name}.attention.self.value", hidden, hidden),
                          heads, head_dim)
        k_t = g.op("Transpose", key, perm=[0, 1, 3, 2])
        probs = L.masked_softmax(g, L.attention_scores(g, q, k_t, head_dim), padding,
                                 keep=False)
        ctx = L.merge_heads(g, g.op("MatMul", probs, v), hidden)
        attn = L.linear(g, ctx, f"{name}.attention.output.dense", hidden, hidden)
        x = L.layer_norm(g, g.op("Add", attn, x), f"{name}.attention.output.LayerNorm", hidden,
                         layer_norm, opset, eps=1e-12)
        g.scope(f"encoder/layer.{k}/ffn")
        h = L.gelu(g, L.linear(g, x, f"{name}.intermediate.dense", hidden, inner), gelu)
        h = L.linear(g, h, f"{name}.output.dense", inner, hidden)
        x = L.layer_norm(g, g.op("Add", h, x), f"{name}.output.LayerNorm", hidden, layer_norm,
                         opset, eps=1e-12)

    g.scope("pooler")
    first = g.op("Gather", x, g.const(0), axis=1)
    w = g.weight("pooler.dense.weight", [hidden, hidden])
    b = g.tensor("pooler.dense.bias", np.zeros(hidden, np.float32))
    pooled = g.op("Tanh", g.op("Gemm", first, w, b, alpha=1.0, beta=1.0, transB=1))
    g.scope("")
    g.output(x, "last_hidden_state", FLOAT, ["batch", "sequence", hidden])
    g.output(pooled, "pooler_output", FLOAT, ["batch", hidden])
    return g.build(opset, doc="aioinfer.models.bert_like: BERT-style encoder, seeded weights")
