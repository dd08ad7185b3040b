"""A small ResNet-style image classifier, emitted as torch.onnx emits a torchvision ResNet."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from ._graph import FLOAT, GraphBuilder


def cnn(
    *,
    batch: int | str = 1,
    image_size: int = 224,
    widths: Sequence[int] = (16, 32, 64),
    blocks_per_stage: int = 1,
    num_classes: int = 1000,
    opset: int = 17,
    seed: int = 0,
) -> onnx.ModelProto:
    """A ResNet-style CNN: stem Conv(7x7, /2)+BN+Relu and MaxPool(/2), then per stage residual
    basic blocks (Conv+BN+Relu, Conv+BN, Add, Relu; stride 2 and a 1x1 projection from the
    second stage on), GlobalAveragePool, Flatten, Gemm and Softmax.

    Input ``input`` float32 ``[batch, 3, image_size, image_size]`` (``batch`` may be a name for
    a dynamic batch); output ``probabilities`` float32 ``[batch, num_classes]``.
    """
    if image_size < 8:
        raise ValueError(f"cnn: image_size must be >= 8, got {image_size}")
    g = GraphBuilder("cnn", seed)
    example_batch = batch if isinstance(batch, int) else 1
    x = g.input("input", FLOAT, [batch, 3, image_size, image_size],
                [example_batch, 3, image_size, image_size])
    g.scope("stem")
    x = _conv_bn(g, x, "stem", 3, widths[0], kernel=7, stride=2, relu=True)
    x = g.op("MaxPool", x, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    channels = widths[0]
    for stage, width in enumerate(widths):
        for block in range(blocks_per_stage):
            stride = 2 if stage > 0 and block == 0 else 1
            g.scope(f"layer{stage + 1}/{block}")
            x = _basic_block(g, x, f"layer{stage + 1}.{block}", channels, width, stride)
            channels = width
    g.scope("head")
    x = g.op("GlobalAveragePool", x)
    x = g.op("Flatten", x, axis=1)
    w = g.weight("fc.weight", [num_classes, channels])
    b = g.tensor("fc.bias", np.zeros(num_classes, np.float32) + g.rng.normal(
        0, 0.01, num_classes).astype(np.float32))
    x = g.op("Gemm", x, w, b, alpha=1.0, beta=1.0, transB=1)
    x = g.op("Softmax", x, axis=-1)
    g.scope("")
    g.output(x, "probabilities", FLOAT, [batch, num_classes])
    return g.build(opset, doc="aioinfer.models.cnn: ResNet-style classifier, seeded weights")


def _conv_bn(g: GraphBuilder, x: str, name: str, cin: int, cout: int, *, kernel: int,
             stride: int, relu: bool) -> str:
    pad = kernel // 2
    # He initialisation keeps activations of the deep random net in a sane range.
    w = g.weight(f"{name}.conv.weight", [cout, cin, kernel, kernel],
                 std=float(np.sqrt(2.0 / (cin * kernel * kernel))))
    x = g.op("Conv", x, w, kernel_shape=[kernel, kernel], strides=[stride, stride],
             pads=[pad] * 4, dilations=[1, 1], group=1)
    scale = g.tensor(f"{name}.bn.weight", g.rng.uniform(0.5, 1.0, cout).astype(np.float32))
    bias = g.tensor(f"{name}.bn.bias", g.rng.normal(0, 0.1, cout).astype(np.float32))
    mean = g.tensor(f"{name}.bn.running_mean", g.rng.normal(0, 0.1, cout).astype(np.float32))
    var = g.tensor(f"{name}.bn.running_var", g.rng.uniform(0.5, 1.5, cout).astype(np.float32))
    x = g.op("BatchNormalization", x, scale, bias, mean, var, epsilon=1e-5, momentum=0.9)
    return g.op("Relu", x) if relu else x


def _basic_block(g: GraphBuilder, x: str, name: str, cin: int, cout: int, stride: int) -> str:
    y = _conv_bn(g, x, f"{name}.conv1", cin, cout, kernel=3, stride=stride, relu=True)
    y = _conv_bn(g, y, f"{name}.conv2", cout, cout, kernel=3, stride=1, relu=False)
    if stride != 1 or cin != cout:
        x = _conv_bn(g, x, f"{name}.downsample", cin, cout, kernel=1, stride=stride, relu=False)
    return g.op("Relu", g.op("Add", y, x))
