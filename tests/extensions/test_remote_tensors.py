"""Remote contexts and tensors: set_tensor without copies, preallocated outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import aioinfer
from aioinfer.errors import (
    InputShapeError,
    InputTypeError,
    InvalidPropertyValueError,
    UnknownPropertyError,
)
from aioinfer.tensor import SHARED_BUFFER, RemoteContext

PROBE = "com.example.probe"


class Probe(aioinfer.Op):
    """y = 3 * x, noting the address of the buffer the plan hands it."""

    domain = PROBE
    seen: list[int] = []

    def infer_shape(self, inputs: Any) -> Any:
        return [inputs[0]]

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        Probe.seen.append(x.__array_interface__["data"][0])
        return x * np.float32(3)


def probe_model() -> onnx.ModelProto:
    nodes = [helper.make_node("Probe", ["x"], ["y"], domain=PROBE, name="probe"),
             helper.make_node("Neg", ["y"], ["z"], name="neg")]
    graph = helper.make_graph(
        nodes, "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [4, 8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(PROBE, 1)])


def address(array: np.ndarray) -> int:
    return int(array.__array_interface__["data"][0])


@pytest.fixture
def core() -> aioinfer.Core:
    core = aioinfer.Core()
    core.add_extension(Probe)
    return core


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE"])
def test_contexts(core: aioinfer.Core, device: str) -> None:
    context = core.get_default_context(device)
    assert context is core.get_default_context(device)
    assert context.get_device_name() == device and context.get_params() == {}
    tensor = context.create_tensor("f32", (2, 3))
    assert tensor.get_device_name() == device
    assert tensor.shape == (2, 3) and tensor.element_type == np.float32
    assert tensor.byte_size == 24 and tensor.size == 6
    host = context.create_host_tensor(np.float32, (2, 3))
    host.data[...] = np.arange(6).reshape(2, 3)
    tensor.copy_from(host)
    back = np.zeros((2, 3), np.float32)
    tensor.copy_to(back)
    np.testing.assert_array_equal(back, host.data)
    with pytest.raises(UnknownPropertyError, match="NOPE"):
        core.create_context(device, {"NOPE": 1})
    with pytest.raises(UnknownPropertyError, match="NOPE"):
        context.create_tensor("f32", (1,), {"NOPE": 1})


def test_shared_buffer_wraps_the_array(core: aioinfer.Core) -> None:
    context = core.get_default_context("NUMPY")
    array = np.zeros((4, 8), np.float32)
    tensor = context.create_tensor("f32", (4, 8), {SHARED_BUFFER: array})
    assert tensor.buffer is array and tensor.get_params() == {SHARED_BUFFER: array}
    with pytest.raises(InvalidPropertyValueError, match=SHARED_BUFFER):
        context.create_tensor("f32", (4, 8), {SHARED_BUFFER: np.zeros((8, 4), np.float32)})
    with pytest.raises(InputShapeError):
        tensor.copy_from(np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE"])
def test_set_tensor_reads_the_buffer_in_place_across_reuses(core: aioinfer.Core,
                                                              device: str) -> None:
    compiled = core.compile_model(probe_model(), device)
    request = compiled.create_infer_request()
    remote = core.get_default_context(device).create_tensor("f32", (4, 8))
    output = core.get_default_context(device).create_tensor("f32", (4, 8))
    request.set_tensor("x", remote)
    request.set_tensor("z", output)
    assert request.get_tensor("x") is remote and request.get_tensor("z") is output
    rng = np.random.default_rng(0)
    result = np.empty((4, 8), np.float32)
    Probe.seen.clear()
    for _ in range(1000):
        frame = rng.standard_normal((4, 8)).astype(np.float32)
        remote.copy_from(frame)  # new contents, same buffer
        results = request.infer()
        assert results["z"] is output.buffer
        output.copy_to(result)
        np.testing.assert_array_equal(result, -3 * frame)
    assert set(Probe.seen) == {address(remote.buffer)}  # every run read the one buffer
    assert len(Probe.seen) == 1000


@pytest.mark.anyio
async def test_remote_tensors_in_async_runs(core: aioinfer.Core) -> None:
    compiled = core.compile_model(probe_model(), "HETERO:NUMPY,TEMPLATE",
                                  {"AFFINITY": {"neg": "TEMPLATE"}})
    request = compiled.create_infer_request()
    context = core.get_default_context("NUMPY")
    remote = context.create_tensor("f32", (4, 8))
    out = aioinfer.Tensor(np.float32, (4, 8))
    request.set_tensor("z", out)
    for k in range(20):
        remote.copy_from(np.full((4, 8), k, np.float32))
        results = await request.infer_async({"x": remote})
        assert results["z"] is out.data
        np.testing.assert_array_equal(out.data, np.full((4, 8), -3 * k, np.float32))
    compiled.release()


def test_host_tensor_is_not_copied(core: aioinfer.Core) -> None:
    array = np.ones((4, 8), np.float32)
    tensor = aioinfer.Tensor(array)
    assert tensor.data is array and np.asarray(tensor) is array
    request = core.compile_model(probe_model(), "NUMPY").create_infer_request()
    Probe.seen.clear()
    request.set_tensor("x", tensor)
    request.infer()
    assert Probe.seen == [address(array)]


def test_bad_remote_tensors_name_the_input(core: aioinfer.Core) -> None:
    request = core.compile_model(probe_model(), "NUMPY").create_infer_request()
    context = core.get_default_context("NUMPY")
    with pytest.raises(InputTypeError, match="'x'.*float64"):
        request.set_tensor("x", context.create_tensor("f64", (4, 8)))
    with pytest.raises(InputShapeError, match="'x'"):
        request.set_tensor("x", context.create_tensor("f32", (4, 9)))
    with pytest.raises(InputShapeError, match="'z'"):
        request.set_tensor("z", np.zeros((4, 9), np.float32))

    class DeviceMemory(RemoteContext):
        memory = "fake-device"

    with pytest.raises(InputTypeError, match="'x'.*fake-device"):
        request.set_tensor("x", DeviceMemory("FAKE").create_tensor("f32", (4, 8)))


def test_a_plain_array_as_preallocated_output(core: aioinfer.Core) -> None:
    request = core.compile_model(probe_model(), "NUMPY").create_infer_request()
    out = np.empty((4, 8), np.float32)
    request.set_tensor("z", out)
    x = np.ones((4, 8), np.float32)
    assert request.infer({"x": x})["z"] is out
    np.testing.assert_array_equal(out, -3 * x)
