"""Small real models for the engine plugin tests (OPENVINO, ORT)."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import aioinfer
from aioinfer import models

DOMAIN = "com.aioinfer.test"


class SoftClip(aioinfer.Op):
    """A custom-domain op only aioinfer's own devices run: x / (1 + |x|)."""

    domain = DOMAIN

    def infer_shape(self, inputs: Any) -> Any:
        return [inputs[0]]

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        return (x / (1.0 + np.abs(x))).astype(x.dtype)


def _weight(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.3


def custom_op_model(named: bool = True) -> onnx.ModelProto:
    """x[4,8] -> MatMul -> Relu -> SoftClip (custom) -> MatMul -> Add(x) -> y[4,8].

    Unnamed (``named=False``), the nodes get aioinfer's ``<OpType>_<index>`` names."""
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["a"], name="mm1"),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node("SoftClip", ["r"], ["c"], domain=DOMAIN, name="clip"),
        helper.make_node("MatMul", ["c", "w2"], ["b"], name="mm2"),
        helper.make_node("Add", ["b", "x"], ["y"], name="residual"),
    ]
    if not named:
        for node in nodes:
            node.name = ""
    graph = helper.make_graph(
        nodes, "custom_op_model", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
        initializer=[numpy_helper.from_array(_weight(1, (8, 8)), "w1"),
                     numpy_helper.from_array(_weight(2, (8, 8)), "w2")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(DOMAIN, 1)])


def custom_op_reference(x: np.ndarray) -> np.ndarray:
    r = np.maximum(x @ _weight(1, (8, 8)), 0)
    return (r / (1 + np.abs(r))) @ _weight(2, (8, 8)) + x


def reshape_model() -> onnx.ModelProto:
    """y = Reshape(x, shape): fails at run time when the sizes do not match."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")], "reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None]),
         helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, None])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def long_loop_model() -> onnx.ModelProto:
    """y = x + n (a Loop of ``n`` steps adding one: as long-running as one likes)."""
    body = helper.make_graph(
        [helper.make_node("Add", ["v", "one"], ["v2"]),
         helper.make_node("Identity", ["c"], ["c2"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("c2", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v2", TensorProto.FLOAT, [8])],
        initializer=[numpy_helper.from_array(np.ones(8, np.float32), "one")])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["n", "", "x"], ["y"], body=body, name="loop")], "long_loop",
        [helper.make_tensor_value_info("n", TensorProto.INT64, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def single_node(op: str, elem: int, opset: int, domain: str = "") -> onnx.ModelProto:
    """A one-node model ``y = op(x)`` on a [2, 3] tensor of element type ``elem``."""
    graph = helper.make_graph(
        [helper.make_node(op, ["x"], ["y"], name="node", domain=domain)], f"single_{op}",
        [helper.make_tensor_value_info("x", elem, [2, 3])],
        [helper.make_tensor_value_info("y", elem, [2, 3])])
    imports = [helper.make_opsetid("", opset)]
    if domain:
        imports.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=imports)


def small_bert() -> onnx.ModelProto:
    return models.get("bert", hidden=32, layers=1, heads=2, seq=8, max_positions=8,
                               vocab_size=50)


def small_cnn() -> onnx.ModelProto:
    return models.get("cnn", image_size=32, widths=(8, 16), num_classes=10)
