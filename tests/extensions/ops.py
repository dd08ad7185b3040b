"""Custom operations and models using them, shared by the extension tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import aioinfer

DOMAIN = "com.example"


class Swish(aioinfer.Op):
    """x * sigmoid(beta * x); refuses a negative beta at run time (for the error tests)."""

    domain = DOMAIN

    def infer_shape(self, inputs: Any, *, beta: float = 1.0) -> Any:
        return [inputs[0]]

    def evaluate(self, x: np.ndarray, *, beta: float = 1.0) -> np.ndarray:
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        return (x / (1.0 + np.exp(-beta * x))).astype(x.dtype)

    @classmethod
    def function(cls) -> onnx.FunctionProto:
        # x * Sigmoid(beta * x), with beta an attribute reference (default 1.0)
        beta = helper.make_node("Constant", [], ["b"], value_float=1.0)
        beta.attribute[0].ref_attr_name = "beta"
        nodes = [beta, helper.make_node("Mul", ["x", "b"], ["bx"]),
                 helper.make_node("Sigmoid", ["bx"], ["s"]),
                 helper.make_node("Mul", ["x", "s"], ["y"])]
        default = helper.make_attribute("beta", 1.0)
        return helper.make_function(cls.domain, cls.op_type, ["x"], ["y"], nodes,
                                    [helper.make_opsetid("", 17)],
                                    attribute_protos=[default])


class SplitSum(aioinfer.Op):
    """Two outputs: the sum over ``axis`` and the input's max (to test arity and types)."""

    domain = DOMAIN

    def infer_shape(self, inputs: Any, *, axis: int = -1) -> Any:
        kind = inputs[0]
        shape = list(kind.shape)
        del shape[axis]
        return [(kind.element_type, shape), (kind.element_type, [])]

    def evaluate(self, x: np.ndarray, *, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
        return x.sum(axis=axis), np.asarray(x.max())


def swish_reference(x: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """What :func:`swish_model` computes, in NumPy."""
    m = 2.0 * x
    return np.maximum(m / (1.0 + np.exp(-beta * m)), 0.0)


def swish_model(beta: float = 2.0, shape: tuple[int, ...] = (2, 3)) -> onnx.ModelProto:
    """x -> Mul(2) -> com.example::Swish(beta) -> Relu -> z."""
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["m"], name="mul"),
        helper.make_node("Swish", ["m"], ["y"], domain=DOMAIN, beta=beta, name="swish"),
        helper.make_node("Relu", ["y"], ["z"], name="relu"),
    ]
    graph = helper.make_graph(
        nodes, "swish_model", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, shape)],
        initializer=[numpy_helper.from_array(np.float32([2.0]), "two")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(DOMAIN, 1)])


def split_sum_model() -> onnx.ModelProto:
    """x[3,4] -> SplitSum(axis=1) -> (s[3] + 1, max)."""
    nodes = [
        helper.make_node("SplitSum", ["x"], ["s", "mx"], domain=DOMAIN, axis=1, name="split"),
        helper.make_node("Add", ["s", "one"], ["out"], name="add"),
    ]
    graph = helper.make_graph(
        nodes, "split_sum", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("mx", TensorProto.FLOAT, [])],
        initializer=[numpy_helper.from_array(np.float32(1.0), "one")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(DOMAIN, 1)])
