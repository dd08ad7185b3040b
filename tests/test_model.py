"""Model: ports, dynamic dimensions, reshape, the networkx view, reading bad files."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import aioinfer
from aioinfer import errors

from .models_small import add_relu, linear


def test_ports_describe_names_shapes_and_types() -> None:
    model = aioinfer.Core().read_model(linear())
    (x,) = model.inputs
    assert x.name == "x" and x.shape == ("batch", 8) and x.element_type == np.float32
    assert x.is_dynamic and x.rank == 2
    assert [p.name for p in model.outputs] == ["y"]
    assert model.input().name == "x" and model.output(0).name == "y"


def test_initializers_are_not_inputs() -> None:
    model = aioinfer.Core().read_model(linear())
    assert [p.name for p in model.inputs] == ["x"]


def test_reshape_makes_shapes_static() -> None:
    model = aioinfer.Core().read_model(linear())
    model.reshape({"x": [5, 8]})
    assert model.inputs[0].shape == (5, 8) and not model.inputs[0].is_dynamic
    assert model.outputs[0].shape == (5, 4)


def test_reshape_with_wrong_rank_names_the_input() -> None:
    model = aioinfer.Core().read_model(linear())
    with pytest.raises(errors.InputError, match="'x'"):
        model.reshape([1, 2, 3])


def test_graph_view_is_a_networkx_digraph() -> None:
    graph = aioinfer.Core().read_model(add_relu()).graph
    assert list(graph.edges(data="tensors")) == [("add", "relu", ["c"])]
    assert graph.nodes["relu"]["op_type"] == "Relu"


def test_unnamed_nodes_get_unique_names() -> None:
    proto = add_relu()
    for node in proto.graph.node:
        node.name = ""
    model = aioinfer.Core().read_model(proto)
    assert [n.name for n in model.proto.graph.node] == ["Add_0", "Relu_1"]
    assert proto.graph.node[0].name == ""  # the caller's proto is untouched


def test_truncated_file_is_invalid_model(tmp_path) -> None:
    path = tmp_path / "cut.onnx"
    path.write_bytes(linear().SerializeToString()[:-40])
    with pytest.raises(errors.InvalidModelError, match="cut.onnx") as info:
        aioinfer.Core().read_model(path)
    assert info.value.path == str(path)


def test_garbage_bytes_are_invalid_model() -> None:
    with pytest.raises(errors.InvalidModelError):
        aioinfer.Core().read_model(b"\xff\x00 this is not protobuf" * 10)


def test_missing_file_is_invalid_model(tmp_path) -> None:
    with pytest.raises(errors.InvalidModelError, match="does not exist"):
        aioinfer.Core().read_model(tmp_path / "nope.onnx")


def test_graph_failing_the_checker_is_invalid_model() -> None:
    proto = add_relu()
    proto.graph.node[1].input[0] = "undefined_value"
    with pytest.raises(errors.InvalidModelError, match="undefined_value"):
        aioinfer.Core().read_model(proto)


def test_wrong_source_type() -> None:
    with pytest.raises(errors.InvalidModelError, match="int"):
        aioinfer.Core().read_model(42)


def test_model_roundtrips_to_onnx() -> None:
    model = aioinfer.Core().read_model(linear())
    onnx.checker.check_model(model.proto)
