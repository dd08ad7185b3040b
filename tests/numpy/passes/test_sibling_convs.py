"""Convolutions of one input with the same window merge into one (``passes/sibling_convs.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ._util import check, model, ops


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(sum(shape))
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _module(batch: int, activations: tuple[str, str, str] = ("Relu", "Relu", "Relu")):
    """An Inception-like module: three 1x1 convs of x (the second without bias), one into a
    Concat directly, two through a 3x3 conv each."""
    x = rand(batch, 16, 9, 9)
    nodes, weights = [], {}
    for k, (m, act) in enumerate(zip((8, 6, 4), activations, strict=True)):
        inputs = ["x", f"w{k}"] + ([] if k == 1 else [f"b{k}"])
        nodes.append(helper.make_node("Conv", inputs, [f"c{k}"]))
        nodes.append(helper.make_node(act, [f"c{k}"], [f"r{k}"]))
        weights[f"w{k}"] = rand(m, 16, 1, 1, scale=0.3)
        if k != 1:
            weights[f"b{k}"] = rand(m)
    for k in (1, 2):
        nodes.append(helper.make_node("Conv", [f"r{k}", f"v{k}"], [f"t{k}"], pads=[1, 1, 1, 1]))
        weights[f"v{k}"] = rand(5, weights[f"w{k}"].shape[0], 3, 3, scale=0.3)
    nodes.append(helper.make_node("Concat", ["r0", "t1", "t2"], ["y"], axis=1))
    return model(nodes, {"x": x}, ["y"], weights), x


@pytest.mark.parametrize("batch", [1, 2])
def test_three_sibling_1x1_convs_become_one_product(batch: int) -> None:
    m, x = _module(batch)
    p = check(m, {"x": x}, rtol=1e-4, atol=1e-5)
    assert ops(p).count("FusedConv") == 3  # the merged 1x1 and the two 3x3
    assert "ChannelSplit" in ops(p)


def test_siblings_with_different_activations_stay_apart() -> None:
    m, x = _module(1, ("Relu", "Relu", "Sigmoid"))
    p = check(m, {"x": x}, rtol=1e-4, atol=1e-5)
    assert ops(p).count("FusedConv") == 4  # the two Relu siblings merged, the third alone


def test_a_conv_with_a_residual_input_is_not_merged() -> None:
    x = rand(1, 8, 6, 6)
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a"]),
             helper.make_node("Conv", ["x", "w1"], ["b"]),
             helper.make_node("Add", ["b", "x"], ["y"]),
             helper.make_node("Relu", ["a"], ["z"])]
    m = model(nodes, {"x": x}, ["y", "z"], {"w0": rand(8, 8, 1, 1), "w1": rand(8, 8, 1, 1)})
    p = check(m, {"x": x}, rtol=1e-4, atol=1e-5)
    assert "ChannelSplit" not in ops(p)
