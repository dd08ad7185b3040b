"""A ViT-style image encoder, emitted the way torch.onnx exports Hugging Face
``ViTForImageClassification``."""

from __future__ import annotations

import numpy as np
import onnx

from . import _layers as L
from ._graph import FLOAT, GraphBuilder


def vit_like(
    *,
    image_size: int = 224,
    patch: int = 16,
    hidden: int = 192,
    layers: int = 4,
    heads: int = 3,
    intermediate: int | None = None,
    num_classes: int = 1000,
    batch: int = 1,
    layer_norm: str = "decomposed",
    gelu: str = "erf",
    opset: int = 17,
    seed: int = 0,
) -> onnx.ModelProto:
    """A pre-LayerNorm transformer encoder over image patches, with a classification head.

    Patch embedding: Conv(``patch`` x ``patch``, stride ``patch``), Flatten from axis 2,
    Transpose to ``[batch, patches, hidden]``; a learned CLS token (Expand-ed to the batch) is
    concatenated in front and position embeddings are added. Each layer: LayerNorm, self
    attention (no mask), residual Add, LayerNorm, MLP with GELU, residual Add. Then the final
    LayerNorm, the CLS token (Gather) and a Gemm classifier.

    Input ``pixel_values`` float32 ``[batch, 3, image_size, image_size]`` (``batch`` dynamic);
    output ``logits`` float32 ``[batch, num_classes]``.
    """
    L.check_choices(opset, layer_norm, gelu)
    if hidden % heads:
        raise ValueError(f"vit_like: hidden ({hidden}) must be divisible by heads ({heads})")
    if image_size % patch:
        raise ValueError(f"vit_like: image_size ({image_size}) must be a multiple of patch "
                         f"({patch})")
    head_dim, inner = hidden // heads, intermediate or 4 * hidden
    tokens = (image_size // patch) ** 2 + 1
    g = GraphBuilder("vit_like", seed)
    pixels = g.input("pixel_values", FLOAT, ["batch", 3, image_size, image_size],
                     [batch, 3, image_size, image_size])

    g.scope("vit/embeddings/patch_embeddings/projection")
    w = g.weight("vit.embeddings.patch_embeddings.projection.weight",
                 [hidden, 3, patch, patch], std=float(np.sqrt(1.0 / (3 * patch * patch))))
    b = g.tensor("vit.embeddings.patch_embeddings.projection.bias",
                 g.rng.normal(0, 0.02, hidden).astype(np.float32))
    x = g.op("Conv", pixels, w, b, kernel_shape=[patch, patch], strides=[patch, patch],
             pads=[0, 0, 0, 0], dilations=[1, 1], group=1)
    x = g.op("Transpose", _flatten2(g, x), perm=[0, 2, 1])
    g.scope("vit/embeddings")
    cls = g.weight("vit.embeddings.cls_token", [1, 1, hidden], std=0.5)
    shape = g.op("Concat", L.as_1d(g, L.dim(g, pixels, 0)), g.const([1]), g.const([1]), axis=0)
    cls = g.op("Expand", cls, shape)
    x = g.op("Concat", cls, x, axis=1)
    pos = g.weight("vit.embeddings.position_embeddings", [1, tokens, hidden], std=0.5)
    x = g.op("Add", x, pos)

    for k in range(layers):
        name = f"vit.encoder.layer.{k}"
        g.scope(f"vit/encoder/layer.{k}/attention")
        h = L.layer_norm(g, x, f"{name}.layernorm_before", hidden, layer_norm, opset, eps=1e-12)
        q = L.split_heads(g, L.linear(g, h, f"{name}.attention.attention.query", hidden, hidden),
                          heads, head_dim)
        key = L.split_heads(g, L.linear(g, h, f"{name}.attention.attention.key", hidden,
                                        hidden), heads, head_dim)
        v = L.split_heads(g, L.linear(g, h, f"{name}.attention.attention.value", hidden,
                                      hidden), heads, head_dim)
        scores = L.attention_scores(g, q, g.op("Transpose", key, perm=[0, 1, 3, 2]), head_dim)
        probs = g.op("Softmax", scores, axis=-1)
        ctx = L.merge_heads(g, g.op("MatMul", probs, v), hidden)
        x = g.op("Add", L.linear(g, ctx, f"{name}.attention.output.dense", hidden, hidden), x)
        g.scope(f"vit/encoder/layer.{k}/mlp")
        h = L.layer_norm(g, x, f"{name}.layernorm_after", hidden, layer_norm, opset, eps=1e-12)
        h = L.gelu(g, L.linear(g, h, f"{name}.intermediate.dense", hidden, inner), gelu)
        x = g.op("Add", L.linear(g, h, f"{name}.output.dense", inner, hidden), x)

    g.scope("vit")
    x = L.layer_norm(g, x, "vit.layernorm", hidden, layer_norm, opset, eps=1e-12)
    g.scope("classifier")
    first = g.op("Gather", x, g.const(0), axis=1)
    w = g.weight("classifier.weight", [num_classes, hidden])
    b = g.tensor("classifier.bias", np.zeros(num_classes, np.float32))
    logits = g.op("Gemm", first, w, b, alpha=1.0, beta=1.0, transB=1)
    g.scope("")
    g.output(logits, "logits", FLOAT, ["batch", num_classes])
    return g.build(opset, doc="aioinfer.models.vit_like: ViT-style encoder, seeded weights")


def _flatten2(g: GraphBuilder, x: str) -> str:
    """``x.flatten(2)`` as torch.onnx emits it: Shape, Slice the leading dims, Concat -1,
    Reshape."""
    lead = g.op("Slice", g.op("Shape", x), g.const([0]), g.const([2]), g.const([0]))
    return g.op("Reshape", x, g.op("Concat", lead, g.const([-1]), axis=0))
