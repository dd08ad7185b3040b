"""The written-out GELU pass (passes/gelu.py): erf and tanh forms fold into the MatMul."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ._util import check, model, ops

_RNG = np.random.default_rng(7)
_W = (_RNG.standard_normal((16, 24)) * 0.5).astype(np.float32)
_B = _RNG.standard_normal(24).astype(np.float32)
_X = {"x": (_RNG.standard_normal((5, 16)) * 2).astype(np.float32)}


def _const(value: float) -> np.ndarray:
    return np.array(value, dtype=np.float32)


def _erf_nodes(order: str) -> list:
    head = [helper.make_node("MatMul", ["x", "W"], ["mm"]),
            helper.make_node("Add", ["mm", "B"], ["h"]),
            helper.make_node("Div", ["h", "sqrt2"], ["d"]),
            helper.make_node("Erf", ["d"], ["e"]),
            helper.make_node("Add", ["e", "one"], ["a"])]
    if order == "late_half":  # (h * a) * 0.5, as BERT exports it
        tail = [helper.make_node("Mul", ["h", "a"], ["m"]),
                helper.make_node("Mul", ["m", "half"], ["y"])]
    elif order == "early_half":  # (h * 0.5) * a
        tail = [helper.make_node("Mul", ["h", "half"], ["m"]),
                helper.make_node("Mul", ["m", "a"], ["y"])]
    else:  # h * (a * 0.5)
        tail = [helper.make_node("Mul", ["a", "half"], ["m"]),
                helper.make_node("Mul", ["h", "m"], ["y"])]
    return head + tail


def _inits() -> dict[str, np.ndarray]:
    return {"W": _W, "B": _B, "sqrt2": _const(np.sqrt(2.0)), "one": _const(1.0),
            "half": _const(0.5), "three": _const(3.0), "k": _const(0.044715),
            "s": _const(np.sqrt(2.0 / np.pi))}


@pytest.mark.parametrize("order", ["late_half", "early_half", "inner_half"])
def test_erf_gelu_becomes_the_matmul_epilogue(order: str) -> None:
    p = check(model(_erf_nodes(order), _X, ["y"], _inits()), _X)
    assert ops(p) == ["FusedMatMul"]


def test_tanh_gelu_as_gpt2_writes_it_becomes_the_matmul_epilogue() -> None:
    nodes = [helper.make_node("MatMul", ["x", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "B"], ["h"]),
             helper.make_node("Pow", ["h", "three"], ["p"]),
             helper.make_node("Mul", ["p", "k"], ["pk"]),
             helper.make_node("Add", ["h", "pk"], ["in"]),
             helper.make_node("Mul", ["in", "s"], ["arg"]),
             helper.make_node("Tanh", ["arg"], ["t"]),
             helper.make_node("Add", ["t", "one"], ["a"]),
             helper.make_node("Mul", ["h", "half"], ["hh"]),
             helper.make_node("Mul", ["hh", "a"], ["y"])]
    p = check(model(nodes, _X, ["y"], _inits()), _X)
    assert ops(p) == ["FusedMatMul"]
    # erf and tanh GELU differ by ~1e-3 here: a wrong form would fail the check above
    assert p.steps[0].fn.keywords["activation"] == "GeluTanh"


def test_gelu_with_an_intermediate_read_elsewhere_is_left_alone() -> None:
    nodes = [*_erf_nodes("late_half"), helper.make_node("Neg", ["e"], ["z"])]
    p = check(model(nodes, _X, ["y", "z"], _inits()), _X)
    assert "Erf" in ops(p)


def test_wrong_constant_is_not_gelu() -> None:
    inits = {**_inits(), "half": _const(0.25)}
    p = check(model(_erf_nodes("late_half"), _X, ["y"], inits), _X)
    assert "Erf" in ops(p)


def test_gelu_after_a_non_product_is_a_gelu_step() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["h"]), *_erf_nodes("late_half")[2:]]
    p = check(model(nodes, _X, ["y"], _inits()), _X)
    assert ops(p) == ["Relu", "Gelu"]
