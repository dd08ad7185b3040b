"""The demo's digit classifier as an ONNX graph, built from learned weights.

    image [N, 3, 32, 32] float32 in [0, 1]
      -> 4 x (Conv 3x3 pad 1 + Relu), MaxPool 2x2 after the first three
      -> GlobalAveragePool -> Flatten -> Gemm -> Softmax -> probabilities [N, 10]

The weights are a mapping ``{"conv{i}.weight": [out, in, 3, 3], "conv{i}.bias": [out],
"fc.weight": [10, features], "fc.bias": [10]}`` as :mod:`aioinfer.demo.train` learns them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx

from ..models._graph import FLOAT, GraphBuilder

INPUT_SIZE = 32
"""Height and width of the model's input."""
CLASSES = 10
CONVS = 4
POOLED = 3
"""The first ``POOLED`` convolutions are followed by a 2x2 max pool."""


def build_graph(weights: Mapping[str, np.ndarray], *, doc: str = "",
                metadata: Mapping[str, str] | None = None) -> onnx.ModelProto:
    """The classifier with ``weights`` (float32), checked with ``full_check=True``."""
    g = GraphBuilder("digits_cnn")
    x = g.input("image", FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE], [1, 3, INPUT_SIZE, INPUT_SIZE])
    for i in range(CONVS):
        g.scope(f"conv{i}")
        w = g.tensor(f"conv{i}.weight", np.asarray(weights[f"conv{i}.weight"], np.float32))
        b = g.tensor(f"conv{i}.bias", np.asarray(weights[f"conv{i}.bias"], np.float32))
        x = g.op("Conv", x, w, b, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        x = g.op("Relu", x)
        if i < POOLED:
            x = g.op("MaxPool", x, kernel_shape=[2, 2], strides=[2, 2])
    g.scope("head")
    x = g.op("GlobalAveragePool", x)
    x = g.op("Flatten", x, axis=1)
    w = g.tensor("fc.weight", np.asarray(weights["fc.weight"], np.float32))
    b = g.tensor("fc.bias", np.asarray(weights["fc.bias"], np.float32))
    x = g.op("Gemm", x, w, b, transB=1)
    x = g.op("Softmax", x, axis=-1)
    g.scope("")
    g.output(x, "probabilities", FLOAT, ["N", CLASSES])
    return g.build(17, doc=doc, metadata=metadata)
