"""Build small real models and run a partition of them sub-model by sub-model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

import aioinfer
from aioinfer.graph.partition import Partition

F = TensorProto.FLOAT
SHAPE = [2, 3]


def make(
    nodes: Sequence[onnx.NodeProto], inputs: Sequence[str], outputs: Sequence[str],
    initializers: Sequence[onnx.TensorProto] = (), opset: int = 17, name: str = "g",
) -> aioinfer.Model:
    """A model of float [2, 3] inputs and outputs, built with onnx.helper and read by Core."""
    graph = helper.make_graph(
        list(nodes), name, [helper.make_tensor_value_info(i, F, SHAPE) for i in inputs],
        [helper.make_tensor_value_info(o, F, SHAPE) for o in outputs],
        initializer=list(initializers),
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return aioinfer.Core().read_model(proto)


def feeds(model: aioinfer.Model, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {p.name: rng.standard_normal(SHAPE).astype(np.float32) for p in model.inputs}


def run_whole(model: aioinfer.Model, inputs: Mapping[str, Any], device: str = "NUMPY") -> list:
    return aioinfer.Core().compile_model(model, device)(dict(inputs)).to_list()


def run_parts(
    part: Partition, inputs: Mapping[str, Any], device: str | None = None
) -> list[Any]:
    """Run the sub-models in order (on their own device, or all on ``device``), handing the
    boundary values over; return the model's outputs."""
    core = aioinfer.Core()
    values = dict(inputs)
    for sub in part.subgraphs:
        submodel = part.submodel(sub.index)
        check(submodel)
        compiled = core.compile_model(submodel, device or sub.device)
        values.update(compiled({name: values[name] for name in sub.inputs}))
    graph = part.model.proto.graph
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    return [values[o.name] if o.name in values else constants[o.name] for o in graph.output]


def check(model: aioinfer.Model) -> None:
    """``onnx.checker`` accepts the model, unless a port has an unknown rank (which ONNX
    cannot state in a checked model: a Loop's carried values, for one)."""
    graph = model.proto.graph
    ports = [*graph.input, *graph.output]
    if all(p.type.tensor_type.HasField("shape") for p in ports if p.type.HasField("tensor_type")):
        onnx.checker.check_model(model.proto, full_check=True)


def assert_same(got: Sequence[Any], want: Sequence[Any]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)
