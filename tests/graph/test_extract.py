"""Model.extract: sub-models with typed boundary ports that check, compile and run."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import aioinfer
from aioinfer import errors

from ._util import SHAPE, F, make

N = helper.make_node


def three_steps() -> aioinfer.Model:
    w = numpy_helper.from_array(np.full([3, 4], 0.5, np.float32), "w")
    unused = numpy_helper.from_array(np.zeros(2, np.float32), "unused")
    return make([N("Relu", ["x"], ["a"], name="relu"), N("MatMul", ["a", "w"], ["b"], name="mm"),
                 N("Tanh", ["b"], ["c"], name="tanh")], ["x"], [], initializers=[w, unused])


def test_extract_types_ports_from_inference() -> None:
    model = three_steps()
    sub = model.extract(["mm", "tanh"], ["a"], ["c"], name="tail")
    onnx.checker.check_model(sub.proto, full_check=True)
    assert sub.name == "tail" and [n.name for n in sub.proto.graph.node] == ["mm", "tanh"]
    assert [(p.name, p.shape, p.element_type) for p in sub.inputs] == [
        ("a", (2, 3), np.float32)]
    assert [(p.name, p.shape) for p in sub.outputs] == [("c", (2, 4))]
    assert [t.name for t in sub.proto.graph.initializer] == ["w"]  # only what it reads
    assert sub.proto.ir_version == model.proto.ir_version
    assert list(sub.proto.opset_import) == list(model.proto.opset_import)
    a = np.random.default_rng(0).standard_normal(SHAPE).astype(np.float32)
    want = np.tanh(a @ np.full([3, 4], 0.5, np.float32))
    for device in ("NUMPY", "TEMPLATE"):
        got = aioinfer.Core().compile_model(sub, device)({"a": a})["c"]
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_extract_keeps_nodes_in_model_order_and_the_model_untouched() -> None:
    model = three_steps()
    before = model.proto.SerializeToString()
    sub = model.extract(["tanh", "relu", "mm"], ["x"], ["a", "c"])
    assert [n.name for n in sub.proto.graph.node] == ["relu", "mm", "tanh"]
    assert [p.name for p in sub.outputs] == ["a", "c"]
    assert model.proto.SerializeToString() == before


@pytest.mark.parametrize("rank_known", [True, False])
def test_unknown_shape_stays_dynamic(rank_known: bool) -> None:
    y = onnx.ValueInfoProto(name="y")
    y.type.tensor_type.elem_type = F  # no shape: only the element type is declared
    graph = helper.make_graph(
        [N("Reshape", ["x", "s"], ["r"], name="reshape"), N("Relu", ["r"], ["y"], name="relu")],
        "g", [helper.make_tensor_value_info("x", F, [6]), helper.make_tensor_value_info(
            "s", onnx.TensorProto.INT64, [2 if rank_known else "n"])], [y])
    model = aioinfer.Model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    sub = model.extract(["relu"], ["r"], ["y"])
    (port,) = sub.inputs
    assert port.element_type == np.float32 and port.is_dynamic
    assert port.rank == (2 if rank_known else None)
    if rank_known:  # the checker wants a rank on graph ports; an unknown rank stays unknown
        onnx.checker.check_model(sub.proto, full_check=True)
    for device in ("NUMPY", "TEMPLATE"):
        out = aioinfer.Core().compile_model(sub, device)({"r": np.ones((2, 3), np.float32)})
        assert out["y"].shape == (2, 3)


def test_untyped_boundary_value_is_a_typed_error() -> None:
    graph = helper.make_graph(
        [N("Foo", ["x"], ["f"], name="foo", domain="custom.ops"),
         N("Relu", ["f"], ["y"], name="relu")],
        "g", [helper.make_tensor_value_info("x", F, SHAPE)],
        [helper.make_tensor_value_info("y", F, SHAPE)])
    model = aioinfer.Core().read_model(helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom.ops", 1)]))
    with pytest.raises(errors.PartitionError, match="'f'") as info:
        model.extract(["relu"], ["f"], ["y"])
    assert info.value.value == "f"


def test_bad_requests_name_the_node_or_value() -> None:
    model = three_steps()
    with pytest.raises(errors.PartitionError, match="'ghost'"):
        model.extract(["ghost"], ["x"], ["a"])
    with pytest.raises(errors.PartitionError, match=r"'mm' reads 'a'") as info:
        model.extract(["mm"], [], ["b"])
    assert info.value.node == "mm" and info.value.value == "a"
    with pytest.raises(errors.PartitionError, match="'c'"):
        model.extract(["relu"], ["x"], ["c"])


def test_type_inference_runs_once_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    model = three_steps()
    calls = []
    real = onnx.shape_inference.infer_shapes

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(onnx.shape_inference, "infer_shapes", counting)
    model.extract(["mm"], ["a"], ["b"])
    model.extract(["tanh"], ["b"], ["c"])
    assert len(calls) == 1


def test_old_ir_keeps_initializers_listed_as_inputs() -> None:
    w = numpy_helper.from_array(np.ones(SHAPE, np.float32), "w")
    graph = helper.make_graph(
        [N("Add", ["x", "w"], ["a"], name="add"), N("Neg", ["a"], ["y"], name="neg")], "g",
        [helper.make_tensor_value_info(n, F, SHAPE) for n in ("x", "w")],
        [helper.make_tensor_value_info("y", F, SHAPE)], initializer=[w])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=3)
    model = aioinfer.Core().read_model(proto)
    sub = model.extract(["add"], ["x"], ["a"])
    onnx.checker.check_model(sub.proto)
    assert [p.name for p in sub.inputs] == ["x"] and sub.proto.ir_version == 3


def test_the_graph_layer_imports_no_plugin() -> None:
    root = pathlib.Path(aioinfer.__file__).parent
    for path in (root / "graph").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
                assert "plugins" not in target, f"{path.name} imports {target}"
            elif isinstance(node, ast.Import):
                assert not any("plugins" in a.name for a in node.names), path.name


def test_local_functions_travel_with_the_sub_model() -> None:
    fn = helper.make_function("my.fns", "Swish", ["v"], ["o"],
                              [N("Sigmoid", ["v"], ["s"]), N("Mul", ["v", "s"], ["o"])],
                              opset_imports=[helper.make_opsetid("", 17)])
    graph = helper.make_graph(
        [N("Relu", ["x"], ["a"], name="relu"), N("Swish", ["a"], ["b"], name="swish",
                                                 domain="my.fns"),
         N("Neg", ["b"], ["y"], name="neg")], "g",
        [helper.make_tensor_value_info("x", F, SHAPE)],
        [helper.make_tensor_value_info("y", F, SHAPE)])
    proto = helper.make_model(graph, functions=[fn], opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("my.fns", 1)])
    model = aioinfer.Core().read_model(proto)
    sub = model.extract(["swish"], ["a"], ["b"])
    onnx.checker.check_model(sub.proto, full_check=True)
    assert [f.name for f in sub.proto.functions] == ["Swish"]
    assert sub.outputs[0].shape == (2, 3)  # inferred through the function body
    a = np.linspace(-2, 2, 6, dtype=np.float32).reshape(SHAPE)
    for device in ("NUMPY", "TEMPLATE"):
        got = aioinfer.Core().compile_model(sub, device)({"a": a})["b"]
        np.testing.assert_allclose(got, a / (1 + np.exp(-a)), rtol=1e-5)
