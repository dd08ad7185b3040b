"""The NUMPY plan compiler: local functions, schema function bodies, subgraphs, folding."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from aioinfer.errors import UnsupportedOperationError
from aioinfer.plugins.numpy import compiler
from aioinfer.plugins.numpy.registry import KernelSpec

from ._ort import assert_matches_ort, compile_model, make_model

F32 = np.float32
DOMAIN = "local.test"


def _transpose_add() -> helper.FunctionProto:
    """y = Transpose(x, perm=@perm) + b, with ``perm`` bound per call site."""
    perm = helper.make_attribute_ref("perm", helper.AttributeProto.INTS)
    transpose = helper.make_node("Transpose", ["x"], ["t"])
    transpose.attribute.append(perm)
    return helper.make_function(
        DOMAIN, "TransposeAdd", ["x", "b"], ["y"],
        [transpose, helper.make_node("Add", ["t", "b"], ["y"])],
        [helper.make_opsetid("", 21)], attributes=["perm"],
    )


def _twice() -> helper.FunctionProto:
    """Calls TransposeAdd twice (a nested call); its internal names clash with the caller's."""
    return helper.make_function(
        DOMAIN, "Twice", ["x", "b"], ["y"],
        [helper.make_node("TransposeAdd", ["x", "b"], ["t"], domain=DOMAIN, perm=[1, 0]),
         helper.make_node("TransposeAdd", ["t", "x"], ["y"], domain=DOMAIN, perm=[1, 0])],
        [helper.make_opsetid("", 21), helper.make_opsetid(DOMAIN, 1)],
    )


def test_local_function_called_twice_matches_onnxruntime():
    nodes = [
        helper.make_node("TransposeAdd", ["x", "b"], ["t"], domain=DOMAIN, perm=[1, 0]),
        helper.make_node("TransposeAdd", ["t", "b2"], ["y"], domain=DOMAIN, perm=[1, 0]),
        helper.make_node("Twice", ["x", "b"], ["z"], domain=DOMAIN),
    ]
    inputs = {"x": np.arange(6, dtype=F32).reshape(2, 3), "b": np.ones((3, 2), F32),
              "b2": np.full((2, 3), 10, F32)}
    model = make_model(nodes, inputs, ["t", "y", "z"], functions=[_transpose_add(), _twice()],
                       extra_opsets={DOMAIN: 1})
    assert_matches_ort(model, inputs)


def test_recursive_local_function_is_rejected():
    loop = helper.make_function(
        DOMAIN, "Forever", ["x"], ["y"],
        [helper.make_node("Forever", ["x"], ["y"], domain=DOMAIN)],
        [helper.make_opsetid(DOMAIN, 1)],
    )
    inputs = {"x": np.zeros(2, F32)}
    model = make_model([helper.make_node("Forever", ["x"], ["y"], domain=DOMAIN)], inputs,
                       ["y"], functions=[loop], extra_opsets={DOMAIN: 1})
    with pytest.raises(UnsupportedOperationError, match="nested deeper"):
        compile_model(model)


def _branch(name: str, value: str) -> helper.GraphProto:
    """A branch adding ``value`` (an outer-scope name) to the loop-carried ``acc``."""
    return helper.make_graph(
        [helper.make_node("Add", ["acc", value], [f"{name}_out"])], name, [],
        [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [3])],
    )


def test_if_inside_loop_reads_outer_scope():
    """acc += offset on iterations whose flag is set, else acc += acc; flags/offset are outer."""
    body = helper.make_graph(
        [helper.make_node("Gather", ["flags", "i"], ["flag"]),
         helper.make_node("If", ["flag"], ["acc_out"], then_branch=_branch("then", "offset"),
                          else_branch=_branch("else", "acc"))],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [3]),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [3])],
    )
    loop = helper.make_node("Loop", ["n", "", "x"], ["final", "history"], body=body)
    inputs = {"n": np.array(4, np.int64), "x": np.array([1, 2, 3], F32),
              "flags": np.array([True, False, True, True]),
              "offset": np.array([10, 20, 30], F32)}
    model = make_model([loop], inputs, ["final", "history"])
    final, history = assert_matches_ort(model, inputs)
    np.testing.assert_array_equal(final, [42, 84, 126])
    assert history.shape == (4, 3)


def _shape_chain(x_shape) -> tuple:
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["dims"]),
        helper.make_node("Concat", ["dims", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[helper.make_tensor("idx", TensorProto.INT64, [2], [0, 2]),
                     helper.make_tensor("minus1", TensorProto.INT64, [1], [-1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    return model, {"x": np.arange(120, dtype=F32).reshape(2, 3, 4, 5)}


def test_shape_gather_concat_chain_folds_on_static_shapes():
    model, inputs = _shape_chain([2, 3, 4, 5])
    plan = compile_model(model)
    assert [s.op_type for s in plan.steps] == ["Reshape"]
    (y,) = assert_matches_ort(model, inputs)
    assert y.shape == (2, 4, 15)


def test_shape_chain_with_dynamic_dim_is_not_folded():
    model, inputs = _shape_chain(["batch", 3, 4, 5])
    plan = compile_model(model)
    assert [s.op_type for s in plan.steps] == ["Shape", "Gather", "Concat", "Reshape"]
    assert_matches_ort(model, inputs)


def test_op_without_kernel_runs_its_schema_function(monkeypatch):
    """Softsign with its kernel hidden runs as x / (1 + |x|), the body onnx defines for it."""
    from aioinfer.plugins.numpy import registry

    real = registry.lookup  # the built-in table, under the plugins' KernelRegistry
    fakes = {"Abs": np.abs, "Div": np.divide, "Add": np.add,
             "CastLike": lambda x, like, saturate=1: x.astype(like.dtype)}

    def lookup(op_type: str, opset: int, domain: str = "") -> KernelSpec | None:
        if op_type == "Softsign":
            return None
        if op_type in fakes:
            return KernelSpec(op_type, "", 1, fakes[op_type], True)
        return real(op_type, opset, domain)

    monkeypatch.setattr(compiler.BUILTINS, "lookup", lookup)
    inputs = {"x": np.linspace(-3, 3, 7, dtype=F32)}
    model = make_model([helper.make_node("Softsign", ["x"], ["y"])], inputs, ["y"], opset=22)
    plan = compile_model(model)
    assert "Softsign" not in {s.op_type for s in plan.steps}
    assert_matches_ort(model, inputs)
