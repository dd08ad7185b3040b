"""A MobileNetV2-style classifier, emitted as torch.onnx exports torchvision's ``mobilenet_v2``
in eval mode (BatchNorm folded into each Conv's bias, ReLU6 as ``Clip(x, 0, 6)``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from ._graph import FLOAT, GraphBuilder

#: torchvision's inverted-residual settings: expansion t, channels c, repeats n, stride s
SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
    (6, 160, 3, 2), (6, 320, 1, 1),
)


def _divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to a multiple of 8, never below 90% of ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mobilenet_v2(
    *,
    batch: int | str = 1,
    image_size: int = 224,
    width_mult: float = 1.0,
    settings: Sequence[tuple[int, int, int, int]] = SETTINGS,
    last_channels: int = 1280,
    num_classes: int = 1000,
    opset: int = 17,
    seed: int = 0,
) -> onnx.ModelProto:
    """MobileNetV2: stem Conv(3x3, /2)+ReLU6, inverted-residual blocks (1x1 expand + ReLU6,
    3x3 depthwise + ReLU6, 1x1 linear projection, residual Add where stride is 1 and the width
    is kept), a 1x1 Conv to ``last_channels`` + ReLU6, GlobalAveragePool, Flatten, Gemm.

    Input ``input`` float32 ``[batch, 3, image_size, image_size]`` (``batch`` may be a name for
    a dynamic batch); output ``logits`` float32 ``[batch, num_classes]``.
    """
    if image_size < 32:
        raise ValueError(f"mobilenet_v2: image_size must be >= 32, got {image_size}")
    g = GraphBuilder("mobilenet_v2", seed)
    example_batch = batch if isinstance(batch, int) else 1
    x = g.input("input", FLOAT, [batch, 3, image_size, image_size],
                [example_batch, 3, image_size, image_size])
    six = (g.const(0.0, np.float32), g.const(6.0, np.float32))
    channels = _divisible(32 * width_mult)
    g.scope("features/0")
    x = _conv(g, x, "features.0", 3, channels, 3, 2, 1, six)
    index = 1
    for t, c, n, s in settings:
        out = _divisible(c * width_mult)
        for k in range(n):
            g.scope(f"features/{index}")
            x = _inverted_residual(g, x, f"features.{index}", channels, out, s if k == 0 else 1,
                                   t, six)
            channels, index = out, index + 1
    last = _divisible(last_channels * max(1.0, width_mult))
    g.scope(f"features/{index}")
    x = _conv(g, x, f"features.{index}", channels, last, 1, 1, 1, six)
    g.scope("classifier")
    x = g.op("Flatten", g.op("GlobalAveragePool", x), axis=1)
    w = g.weight("classifier.1.weight", [num_classes, last], std=0.01)
    b = g.tensor("classifier.1.bias", np.zeros(num_classes, np.float32))
    x = g.op("Gemm", x, w, b, alpha=1.0, beta=1.0, transB=1)
    g.scope("")
    g.output(x, "logits", FLOAT, [batch, num_classes])
    return g.build(opset, doc="aioinfer.models.mobilenet_v2: MobileNetV2-style, seeded weights")


def _conv(g: GraphBuilder, x: str, name: str, cin: int, cout: int, kernel: int, stride: int,
          group: int, clip: tuple[str, str] | None) -> str:
    """Conv with the folded BatchNorm as its bias, then ReLU6 (``clip``) or nothing."""
    fan_in = cin // group * kernel * kernel
    w = g.weight(f"{name}.weight", [cout, cin // group, kernel, kernel],
                 std=float(np.sqrt(2.0 / fan_in)))
    b = g.tensor(f"{name}.bias", g.rng.normal(0, 0.1, cout).astype(np.float32))
    pad = kernel // 2
    x = g.op("Conv", x, w, b, kernel_shape=[kernel, kernel], strides=[stride, stride],
             pads=[pad] * 4, dilations=[1, 1], group=group)
    return g.op("Clip", x, *clip) if clip else x


def _inverted_residual(g: GraphBuilder, x: str, name: str, cin: int, cout: int, stride: int,
                       expand: int, six: tuple[str, str]) -> str:
    hidden = int(round(cin * expand))
    y, layer = x, 0
    if expand != 1:
        y = _conv(g, y, f"{name}.conv.{layer}", cin, hidden, 1, 1, 1, six)
        layer += 1
    y = _conv(g, y, f"{name}.conv.{layer}", hidden, hidden, 3, stride, hidden, six)
    y = _conv(g, y, f"{name}.conv.{layer + 1}", hidden, cout, 1, 1, 1, None)
    return g.op("Add", x, y) if stride == 1 and cin == cout else y
