"""Convolutions write into the buffer of the channel Concat reading them (concat_in_place)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from ._util import check, model, ops

RNG = np.random.default_rng(7)


def _conv(name: str, x: str, cin: int, cout: int, k: int, group: int = 1
          ) -> tuple[onnx.NodeProto, dict[str, np.ndarray]]:
    node = helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [name], name=name,
                            pads=[k // 2] * 4, group=group)
    weights = {f"{name}_w": RNG.standard_normal((cout, cin // group, k, k)).astype(np.float32),
               f"{name}_b": RNG.standard_normal(cout).astype(np.float32)}
    return node, weights


def _fire(batch: int) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """SqueezeNet's fire module: squeeze 1x1 -> (expand 1x1, expand 3x3) -> Concat, plus a
    depthwise branch (a conv path that cannot write in place: its result is copied)."""
    x = RNG.standard_normal((batch, 8, 7, 7)).astype(np.float32)
    squeeze, w0 = _conv("squeeze", "x", 8, 6, 1)
    e1, w1 = _conv("e1", "s", 6, 5, 1)
    e3, w3 = _conv("e3", "s", 6, 7, 3)
    dw, w4 = _conv("dw", "s", 6, 6, 3, group=6)
    nodes = [squeeze, helper.make_node("Relu", ["squeeze"], ["s"]), e1, e3, dw,
             helper.make_node("Relu", ["e1"], ["r1"]), helper.make_node("Relu", ["e3"], ["r3"]),
             helper.make_node("Concat", ["r1", "r3", "dw", "x"], ["y"], axis=1)]
    return model(nodes, {"x": x}, ["y"], {**w0, **w1, **w3, **w4}), {"x": x}


@pytest.mark.parametrize("batch", [1, 2])
def test_fire_module_convs_write_into_the_concat(batch: int) -> None:
    m, inputs = _fire(batch)
    plan = check(m, inputs)
    assert "Concat" not in ops(plan)
    assert ops(plan).count("Empty") == 1 and ops(plan).count("ConcatInto") == 1
    into = [s for s in plan.steps if s.op_type == "FusedConv" and len(s.ins) == 5]
    assert len(into) == 3  # e1, e3 and the depthwise one (copied by its kernel)
    results = [plan.run([inputs["x"]])[0] for _ in range(2)]  # a fresh buffer per run
    assert results[0] is not results[1]
    np.testing.assert_array_equal(results[0], results[1])


def test_not_fired_when_a_concat_input_has_another_consumer() -> None:
    x = RNG.standard_normal((1, 4, 5, 5)).astype(np.float32)
    a, wa = _conv("a", "x", 4, 3, 3)
    b, wb = _conv("b", "x", 4, 2, 1)
    nodes = [a, b, helper.make_node("Concat", ["a", "b"], ["y"], axis=1),
             helper.make_node("Sigmoid", ["a"], ["other"]),
             helper.make_node("Tanh", ["b"], ["other2"])]
    plan = check(model(nodes, {"x": x}, ["y", "other", "other2"], {**wa, **wb}), {"x": x})
    assert "Concat" in ops(plan) and "Empty" not in ops(plan)
    assert all(len(s.ins) <= 4 for s in plan.steps)


def test_only_the_single_consumer_input_is_written_in_place() -> None:
    x = RNG.standard_normal((1, 4, 5, 5)).astype(np.float32)
    a, wa = _conv("a", "x", 4, 3, 3)
    b, wb = _conv("b", "x", 4, 2, 1)
    nodes = [a, b, helper.make_node("Concat", ["a", "b"], ["y"], axis=1),
             helper.make_node("Sigmoid", ["a"], ["other"])]
    plan = check(model(nodes, {"x": x}, ["y", "other"], {**wa, **wb}), {"x": x})
    assert "Concat" not in ops(plan)
    into = {s.node for s in plan.steps if s.op_type == "FusedConv" and len(s.ins) == 5}
    assert into == {"b"}


@pytest.mark.parametrize("batch", [1, 2])
def test_densenet_chain_shares_one_buffer(batch: int) -> None:
    """``c_k = Concat(c_{k-1}, conv(c_{k-1}))``: one buffer for the chain; each link reads the
    one before it while the next writes further channels."""
    x = RNG.standard_normal((batch, 4, 6, 6)).astype(np.float32)
    nodes, weights, prev, channels = [helper.make_node("MaxPool", ["x"], ["c0"],
                                                       kernel_shape=[1, 1])], {}, "c0", 4
    for k in range(1, 4):
        conv, w = _conv(f"conv{k}", f"r{k}", channels, 3, 3)
        nodes += [helper.make_node("Relu", [prev], [f"r{k}"]), conv,
                  helper.make_node("Concat", [prev, f"conv{k}"], [f"c{k}"], axis=1)]
        weights.update(w)
        prev, channels = f"c{k}", channels + 3
    nodes.append(helper.make_node("ReduceMean", ["c2"], ["side"], axes=[2, 3]))
    plan = check(model(nodes, {"x": x}, ["c3", "side"], weights), {"x": x})
    assert ops(plan).count("Empty") == 1 and ops(plan).count("ConcatInto") == 3
