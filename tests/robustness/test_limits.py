"""The allocation cap: sizes that a model's values or its inputs imply are checked before
NUMPY or TEMPLATE allocate; the error names the node; within the cap everything runs."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import aioinfer
from aioinfer import limits
from aioinfer.errors import AllocationLimitError, InvalidModelError

DEVICES = ["NUMPY", "TEMPLATE", "HETERO:NUMPY,TEMPLATE"]


def _range_model() -> object:
    graph = helper.make_graph(
        [helper.make_node("Range", ["start", "limit", "delta"], ["r"], name="range"),
         helper.make_node("Cast", ["r"], ["y"], to=TensorProto.FLOAT, name="cast")], "range",
        [helper.make_tensor_value_info("limit", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])],
        [numpy_helper.from_array(np.array(0, np.int64), "start"),
         numpy_helper.from_array(np.array(1, np.int64), "delta")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("device", DEVICES)
def test_a_range_limit_over_the_cap_is_refused_before_allocating(device: str) -> None:
    request = aioinfer.Core().compile_model(_range_model(), device).create_infer_request()
    with limits.allocation_limit(1 << 20):
        with pytest.raises(AllocationLimitError) as info:
            request.infer({"limit": np.array(10**12)})  # 8 TB of int64
        assert info.value.node == "range" and info.value.nbytes == 8 * 10**12
        assert info.value.limit == 1 << 20 and isinstance(info.value, MemoryError)
        got = request.infer({"limit": np.array(1000)})  # the request is reusable
        np.testing.assert_array_equal(got["y"], np.arange(1000, dtype=np.float32))
    assert limits.max_allocation_bytes() > 1 << 20  # the block restored the default


def _op(op: str, inputs: dict[str, np.ndarray], **attrs: object) -> object:
    graph = helper.make_graph(
        [helper.make_node(op, ["x", *inputs], ["y"], name="op", **attrs)], op,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inputs.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


HUGE = {
    "Tile": {"reps": np.array([2**20, 2**20], np.int64)},
    "Expand": {"shape": np.array([2**20, 2**20, 3], np.int64)},
    "Pad": {"pads": np.array([0, 0, 2**20, 2**20], np.int64)},
    "Resize": {"roi": np.array([], np.float32), "scales": np.array([1e4, 1e4], np.float32)},
}


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE"])
@pytest.mark.parametrize("op", sorted(HUGE))
def test_value_driven_sizes_over_the_cap_name_the_node(op: str, device: str) -> None:
    model = _op(op, HUGE[op])
    model.graph.output[0].type.tensor_type.shape.dim.add().dim_param = "a"
    with limits.allocation_limit(64 << 20):
        with pytest.raises(AllocationLimitError) as info:
            compiled = aioinfer.Core().compile_model(model, device)  # NUMPY folds it here
            compiled.create_infer_request().infer({"x": np.ones((2, 3), np.float32)})
    assert info.value.node == "op", info.value
    assert "over the allocation cap" in str(info.value)


def test_an_initializer_declaring_more_than_the_cap_is_refused_when_read() -> None:
    tensor = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    tensor.dims[0] = 2**45
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [tensor])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(AllocationLimitError, match="initializer 'w'"):
        aioinfer.Core().read_model(model)
    tensor.dims[0] = 5  # within the cap, but not what its 16 bytes hold
    model.graph.initializer[0].CopyFrom(tensor)
    with pytest.raises(InvalidModelError, match="initializer 'w'"):
        aioinfer.Core().read_model(model)


def test_the_cap_comes_from_the_environment() -> None:
    code = ("from aioinfer import limits; print(limits.max_allocation_bytes()); "
            "limits.set_max_allocation_bytes(5); print(limits.max_allocation_bytes())")
    env = {**os.environ, "AIOINFER_MAX_ALLOCATION_BYTES": "3M"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(3 << 20), "5"]
    with pytest.raises(ValueError):
        limits.set_max_allocation_bytes(0)
