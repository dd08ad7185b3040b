"""ShuffleNet's channel shuffle (passes/channel_shuffle.py): one copy, or none inside a conv."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ._util import check, model, ops

_RNG = np.random.default_rng(5)
_C, _G = 12, 3


def _shuffle_nodes(src: str, out: str) -> list:
    return [helper.make_node("Reshape", [src, "s5"], ["r5"]),
            helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
            helper.make_node("Reshape", ["t5", "s4"], [out])]


def _inits(h: int, kernel: int) -> dict[str, np.ndarray]:
    return {"w0": _RNG.standard_normal((_C, 4, 1, 1)).astype(np.float32),
            "dw": _RNG.standard_normal((_C, 1, kernel, kernel)).astype(np.float32),
            "db": _RNG.standard_normal(_C).astype(np.float32),
            "s5": np.array([2, _G, _C // _G, h, h], np.int64),
            "s4": np.array([2, _C, h, h], np.int64)}


@pytest.mark.parametrize(("stride", "pad", "h"), [(1, 1, 9), (2, 1, 10), (1, 0, 8), (2, 0, 7)])
def test_shuffle_before_depthwise_conv_is_done_in_its_padding_copy(stride, pad, h) -> None:
    x = {"x": _RNG.standard_normal((2, 4, h, h)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w0"], ["c0"]),
             helper.make_node("Relu", ["c0"], ["r0"]), *_shuffle_nodes("r0", "sh"),
             helper.make_node("Conv", ["sh", "dw", "db"], ["y"], group=_C, kernel_shape=[3, 3],
                              strides=[stride, stride], pads=[pad] * 4)]
    p = check(model(nodes, x, ["y"], _inits(h, 3)), x)
    assert ops(p) == ["FusedConv", "FusedConv"]
    assert p.steps[1].fn.keywords["shuffle"] == [2, _G, _C // _G, h, h]


def test_shuffle_before_a_1x1_conv_is_one_copy() -> None:
    x = {"x": _RNG.standard_normal((2, _C, 5, 5)).astype(np.float32)}
    nodes = [*_shuffle_nodes("x", "sh"),
             helper.make_node("Conv", ["sh", "dw", "db"], ["y"], group=_C)]
    p = check(model(nodes, x, ["y"], _inits(5, 1)), x)
    assert ops(p) == ["ChannelShuffle", "FusedConv"]


def test_shuffle_read_twice_is_not_absorbed() -> None:
    x = {"x": _RNG.standard_normal((2, _C, 5, 5)).astype(np.float32)}
    nodes = [*_shuffle_nodes("x", "sh"),
             helper.make_node("Conv", ["sh", "dw"], ["y"], group=_C, pads=[1] * 4),
             helper.make_node("Neg", ["sh"], ["z"])]
    p = check(model(nodes, x, ["y", "z"], _inits(5, 3)), x)
    assert ops(p)[0] == "ChannelShuffle"


def test_other_transpose_is_not_a_shuffle() -> None:
    x = {"x": _RNG.standard_normal((2, _C, 5, 5)).astype(np.float32)}
    nodes = [helper.make_node("Reshape", ["x", "s5"], ["r5"]),
             helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 1, 2, 4, 3]),
             helper.make_node("Reshape", ["t5", "s4"], ["y"])]
    p = check(model(nodes, x, ["y"], _inits(5, 3)), x)
    assert "ChannelShuffle" not in ops(p)
