"""The written-out LayerNorm pass (passes/layer_norm.py)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ._util import check, model, ops

_RNG = np.random.default_rng(3)
_X = {"x": (_RNG.standard_normal((3, 5, 32)) * 4 + 1).astype(np.float32)}


def _nodes(affine: int, opset: int = 17) -> list:
    axes = {"axes": [-1]} if opset < 18 else {}
    extra = ["axes"] if opset >= 18 else []
    nodes = [helper.make_node("ReduceMean", ["x", *extra], ["mu"], keepdims=1, **axes),
             helper.make_node("Sub", ["x", "mu"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["sq"]),
             helper.make_node("ReduceMean", ["sq", *extra], ["var"], keepdims=1, **axes),
             helper.make_node("Add", ["var", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["sd"]),
             helper.make_node("Div", ["d", "sd"], ["n" if affine else "y"])]
    if affine >= 1:
        nodes.append(helper.make_node("Mul", ["n", "gamma"], ["g" if affine == 2 else "y"]))
    if affine == 2:
        nodes.append(helper.make_node("Add", ["g", "beta"], ["y"]))
    return nodes


def _inits() -> dict[str, np.ndarray]:
    return {"two": np.array(2.0, np.float32), "eps": np.array(1e-5, np.float32),
            "gamma": _RNG.uniform(0.5, 1.5, 32).astype(np.float32),
            "beta": _RNG.standard_normal(32).astype(np.float32),
            "axes": np.array([-1], np.int64)}


@pytest.mark.parametrize("affine", [0, 1, 2])
def test_layer_norm_chain_becomes_one_node(affine: int) -> None:
    p = check(model(_nodes(affine), _X, ["y"], _inits()), _X)
    assert ops(p) == ["LayerNorm"]


def test_opset18_axes_input() -> None:
    p = check(model(_nodes(2, 18), _X, ["y"], _inits(), opset=18), _X)
    assert ops(p) == ["LayerNorm"]


def test_mean_over_another_axis_is_left_alone() -> None:
    nodes = _nodes(2)
    nodes[0] = helper.make_node("ReduceMean", ["x"], ["mu"], keepdims=1, axes=[1])
    p = check(model(nodes, _X, ["y"], _inits()), _X)
    assert "LayerNorm" not in ops(p)


def test_centred_value_read_elsewhere_is_left_alone() -> None:
    nodes = [*_nodes(2), helper.make_node("Neg", ["d"], ["z"])]
    p = check(model(nodes, _X, ["y", "z"], _inits()), _X)
    assert "LayerNorm" not in ops(p)


def test_shaped_gamma_keeps_the_mul() -> None:
    inits = {**_inits(), "gamma": _RNG.uniform(0.5, 1.5, (5, 32)).astype(np.float32)}
    p = check(model(_nodes(2), _X, ["y"], inits), _X)
    assert ops(p)[0] == "LayerNorm" and "LayerNorm" not in ops(p)[1:]
