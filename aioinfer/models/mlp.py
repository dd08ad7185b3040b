"""A multi-layer perceptron, emitted as torch.onnx emits ``nn.Linear`` + ``nn.ReLU`` layers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from ._graph import FLOAT, GraphBuilder


def mlp(
    *,
    batch: int | str = 64,
    sizes: Sequence[int] = (1024, 4096, 4096, 1000),
    opset: int = 17,
    seed: int = 0,
) -> onnx.ModelProto:
    """Gemm(transB=1)+Relu layers from ``sizes[0]`` features to ``sizes[-1]`` logits.

    Input ``input`` float32 ``[batch, sizes[0]]``; output ``logits`` float32
    ``[batch, sizes[-1]]``. The defaults hold about 25 M weights (100 MB), a GEMM-bound
    benchmark; pass smaller ``sizes`` for tests.
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp: sizes needs at least 2 entries (in, out), got {list(sizes)}")
    g = GraphBuilder("mlp", seed)
    example_batch = batch if isinstance(batch, int) else 1
    x = g.input("input", FLOAT, [batch, sizes[0]], [example_batch, sizes[0]])
    layers = list(zip(sizes[:-1], sizes[1:], strict=True))
    for k, (fan_in, fan_out) in enumerate(layers):
        g.scope(f"fc{k}")
        w = g.weight(f"fc{k}.weight", [fan_out, fan_in], std=float(np.sqrt(2.0 / fan_in)))
        b = g.tensor(f"fc{k}.bias", g.rng.normal(0, 0.01, fan_out).astype(np.float32))
        x = g.op("Gemm", x, w, b, alpha=1.0, beta=1.0, transB=1)
        if k < len(layers) - 1:
            x = g.op("Relu", x)
    g.scope("")
    g.output(x, "logits", FLOAT, [batch, sizes[-1]])
    return g.build(opset, doc="aioinfer.models.mlp: Gemm+Relu layers, seeded weights")
