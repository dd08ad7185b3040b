"""The valid models that fuzzing mutates: small, and together reading most kinds of value.

Each seed is a function returning ``(model, inputs)``: a checked ``onnx.ModelProto`` and a
feed that runs it. They cover the ops whose output sizes come from values (Reshape, Expand,
Tile, ConstantOfShape, Range, Pad, Gather), dense math (MatMul, Gemm, Conv, pooling),
control flow with a subgraph (If, Loop), casts, reductions and an opset-11 model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

Seed = tuple[onnx.ModelProto, dict[str, np.ndarray]]

__all__ = ["SEEDS", "Seed", "seed"]


def _model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
           outputs: list[onnx.ValueInfoProto], inits: dict[str, Any] | None = None,
           opset: int = 17, name: str = "seed") -> onnx.ModelProto:
    graph = h.make_graph(nodes, name, inputs, outputs,
                         [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _vi(name: str, elem: int, shape: list[int | str] | None) -> onnx.ValueInfoProto:
    return h.make_tensor_value_info(name, elem, shape)


def add() -> Seed:
    """The one-op model."""
    model = _model([h.make_node("Add", ["x", "y"], ["z"])],
                   [_vi("x", T.FLOAT, [2, 3]), _vi("y", T.FLOAT, [2, 3])],
                   [_vi("z", T.FLOAT, [2, 3])], name="add")
    rng = np.random.default_rng(0)
    return model, {"x": rng.standard_normal((2, 3), np.float32),
                   "y": rng.standard_normal((2, 3), np.float32)}


def mlp() -> Seed:
    rng = np.random.default_rng(1)
    inits = {"w1": rng.standard_normal((4, 8), np.float32), "b1": np.zeros(8, np.float32),
             "w2": rng.standard_normal((8, 3), np.float32)}
    nodes = [h.make_node("MatMul", ["x", "w1"], ["h0"]), h.make_node("Add", ["h0", "b1"], ["h1"]),
             h.make_node("Relu", ["h1"], ["h2"]),
             h.make_node("Gemm", ["h2", "w2"], ["h3"], alpha=0.5),
             h.make_node("Softmax", ["h3"], ["y"], axis=-1)]
    model = _model(nodes, [_vi("x", T.FLOAT, ["batch", 4])], [_vi("y", T.FLOAT, ["batch", 3])],
                   inits, name="mlp")
    return model, {"x": rng.standard_normal((2, 4), np.float32)}


def conv() -> Seed:
    rng = np.random.default_rng(2)
    inits = {"w": rng.standard_normal((4, 2, 3, 3), np.float32),
             "b": rng.standard_normal(4).astype(np.float32)}
    nodes = [h.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             h.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("GlobalAveragePool", ["p"], ["g"]),
             h.make_node("Flatten", ["g"], ["y"])]
    model = _model(nodes, [_vi("x", T.FLOAT, [1, 2, 8, 8])], [_vi("y", T.FLOAT, [1, 4])], inits,
                   name="conv")
    return model, {"x": rng.standard_normal((1, 2, 8, 8), np.float32)}


def shapes() -> Seed:
    """Reshape, Expand, Tile, ConstantOfShape, Pad: sizes from initializer values."""
    inits = {"shape": np.array([3, 2], np.int64), "expand": np.array([2, 3, 2], np.int64),
             "reps": np.array([1, 2, 1], np.int64), "cshape": np.array([2, 6, 2], np.int64),
             "pads": np.array([0, 1, 0, 0, 1, 0], np.int64)}
    nodes = [h.make_node("Reshape", ["x", "shape"], ["r"]),
             h.make_node("Expand", ["r", "expand"], ["e"]),
             h.make_node("Tile", ["e", "reps"], ["t"]),
             h.make_node("ConstantOfShape", ["cshape"], ["c"],
                         value=numpy_helper.from_array(np.array([0.5], np.float32))),
             h.make_node("Add", ["t", "c"], ["s"]),
             h.make_node("Pad", ["s", "pads"], ["y"])]
    model = _model(nodes, [_vi("x", T.FLOAT, [2, 3])], [_vi("y", T.FLOAT, [2, 8, 2])], inits,
                   name="shapes")
    return model, {"x": np.arange(6, dtype=np.float32).reshape(2, 3)}


def indices() -> Seed:
    """Range, Gather, Concat, Slice, Cast over int64 values."""
    inits = {"zero": np.array(0, np.int64), "one": np.array(1, np.int64),
             "table": np.arange(40, dtype=np.float32).reshape(10, 4),
             "starts": np.array([1], np.int64), "ends": np.array([3], np.int64),
             "axes": np.array([0], np.int64)}
    nodes = [h.make_node("Range", ["zero", "n", "one"], ["r"]),
             h.make_node("Gather", ["table", "ids"], ["g"], axis=0),
             h.make_node("Cast", ["r"], ["rf"], to=T.FLOAT),
             h.make_node("Slice", ["g", "starts", "ends", "axes"], ["s"]),
             h.make_node("ReduceSum", ["s"], ["y"], keepdims=0),
             h.make_node("Concat", ["rf", "rf"], ["z"], axis=0)]
    model = _model(nodes, [_vi("n", T.INT64, []), _vi("ids", T.INT64, [3])],
                   [_vi("y", T.FLOAT, []), _vi("z", T.FLOAT, ["k"])], inits, name="indices")
    return model, {"n": np.array(5, np.int64), "ids": np.array([0, 9, 3], np.int64)}


def control() -> Seed:
    """If with two branches and a Loop carrying a value (subgraphs reading outer values)."""
    then = h.make_graph([h.make_node("Mul", ["x", "x"], ["t_out"])], "then", [],
                        [_vi("t_out", T.FLOAT, [3])])
    other = h.make_graph([h.make_node("Neg", ["x"], ["e_out"])], "else", [],
                         [_vi("e_out", T.FLOAT, [3])])
    body = h.make_graph(
        [h.make_node("Identity", ["cond_in"], ["cond_out"]),
         h.make_node("Add", ["acc_in", "x"], ["acc_out"])], "body",
        [_vi("i", T.INT64, []), _vi("cond_in", T.BOOL, []), _vi("acc_in", T.FLOAT, [3])],
        [_vi("cond_out", T.BOOL, []), _vi("acc_out", T.FLOAT, [3])])
    inits = {"trips": np.array(3, np.int64), "acc0": np.zeros(3, np.float32)}
    nodes = [h.make_node("If", ["flag"], ["branch"], then_branch=then, else_branch=other),
             h.make_node("Loop", ["trips", "flag", "acc0"], ["looped"], body=body),
             h.make_node("Sub", ["branch", "looped"], ["y"])]
    model = _model(nodes, [_vi("x", T.FLOAT, [3]), _vi("flag", T.BOOL, [])],
                   [_vi("y", T.FLOAT, [3])], inits, name="control")
    return model, {"x": np.array([1.0, -2.0, 3.0], np.float32), "flag": np.array(True)}


def mixed() -> Seed:
    """Casts, comparisons, Where, reductions, an opset-11 model with two outputs."""
    nodes = [h.make_node("Cast", ["a"], ["af"], to=T.FLOAT),
             h.make_node("Greater", ["af", "b"], ["gt"]),
             h.make_node("Where", ["gt", "af", "b"], ["w"]),
             h.make_node("ReduceMax", ["w"], ["m"], axes=[1], keepdims=1),
             h.make_node("Sqrt", ["w"], ["sq"]),
             h.make_node("Div", ["sq", "m"], ["y"])]
    model = _model(nodes, [_vi("a", T.INT32, [2, 4]), _vi("b", T.FLOAT, [2, 4])],
                   [_vi("y", T.FLOAT, [2, 4]), _vi("m", T.FLOAT, [2, 1])], opset=11,
                   name="mixed")
    rng = np.random.default_rng(3)
    return model, {"a": rng.integers(-5, 5, (2, 4)).astype(np.int32),
                   "b": rng.standard_normal((2, 4)).astype(np.float32)}


SEEDS: dict[str, Callable[[], Seed]] = {
    "add": add, "mlp": mlp, "conv": conv, "shapes": shapes, "indices": indices,
    "control": control, "mixed": mixed,
}


def seed(name: str) -> Seed:
    """Seed ``name`` (a fresh copy)."""
    return SEEDS[name]()
