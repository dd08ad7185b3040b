"""The CPU proxy: one name over NUMPY (primary) and TEMPLATE (fallback), grouped by UUID."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference.op_run import OpRun

import aioinfer
from aioinfer import errors
from aioinfer.plugins.hetero import HeteroCompiledModel
from aioinfer.plugins.numpy.plugin import NumpyCompiledModel
from aioinfer.plugins.proxy import HOST_CPU_PLUGINS

from ..models_small import add_relu


class Triple(OpRun):
    """A custom-domain op only TEMPLATE runs (once added to it)."""

    op_domain = "com.example"

    def _run(self, x):  # type: ignore[no-untyped-def]
        return (x * 3,)


def custom_model() -> object:
    """y = Triple(Relu(x)) + 1: NUMPY runs Relu and Add, only TEMPLATE runs Triple."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"),
         helper.make_node("Triple", ["r"], ["t"], name="triple", domain="com.example"),
         helper.make_node("Add", ["t", "one"], ["y"], name="add")],
        "custom", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        initializer=[helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
        value_info=[helper.make_tensor_value_info("t", TensorProto.FLOAT, [2, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.example", 1)])


@pytest.fixture
def core() -> aioinfer.Core:
    """NUMPY primary, TEMPLATE fallback (an installed engine would otherwise come first)."""
    core = aioinfer.Core()
    core._plugin("TEMPLATE").add_operations([Triple])  # type: ignore[attr-defined]
    core.set_property("CPU", {"MULTI_DEVICE_PRIORITIES": "NUMPY,TEMPLATE"})
    return core


def test_cpu_is_listed_and_the_plugins_behind_it_are_not() -> None:
    core = aioinfer.Core()
    devices = core.available_devices
    assert "CPU" in devices and "NUMPY" not in devices and "TEMPLATE" not in devices
    behind = core.get_property("CPU", "PROXY_ALIAS_FOR")
    assert behind[-2:] == ["NUMPY", "TEMPLATE"]  # after the installed engines, in order
    assert behind == sorted(behind, key=lambda d: HOST_CPU_PLUGINS.index(d.split(".")[0]))
    assert core.get_property("CPU", "AVAILABLE_DEVICES") == ["0"]
    # hidden, still addressable by name, and sharing the host CPU's UUID
    uuid = core.get_property("NUMPY", "DEVICE_UUID")
    assert uuid == core.get_property("TEMPLATE", "DEVICE_UUID") == core.get_property(
        "CPU", "DEVICE_UUID")


def test_a_model_the_primary_runs_compiles_on_it_directly(core: aioinfer.Core) -> None:
    compiled = core.compile_model(add_relu(), "CPU")
    assert isinstance(compiled, NumpyCompiledModel)  # no wrapper, no extra stage
    assert compiled.get_property("EXECUTION_DEVICES") == ["NUMPY"]
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)
    np.testing.assert_array_equal(compiled({"a": x, "b": x})["d"], np.maximum(2 * x, 0))
    assert isinstance(core.compile_model(add_relu(), "CPU.0"), NumpyCompiledModel)
    with pytest.raises(errors.DeviceNotFoundError, match="CPU.3"):
        core.compile_model(add_relu(), "CPU.3")


def test_an_op_only_the_fallback_runs_compiles_as_implicit_hetero(core: aioinfer.Core) -> None:
    compiled = core.compile_model(custom_model(), "CPU")
    assert isinstance(compiled, HeteroCompiledModel)
    assert compiled.get_property("EXECUTION_DEVICES") == ["NUMPY", "TEMPLATE"]
    x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_allclose(compiled({"x": x})["y"], np.maximum(x, 0) * 3 + 1)
    assert core.query_model(custom_model(), "CPU") == {
        "relu": "CPU", "triple": "CPU", "add": "CPU"}


def test_without_fallback_the_unsupported_node_is_named(core: aioinfer.Core) -> None:
    core.set_property("CPU", {"MULTI_DEVICE_PRIORITIES": "NUMPY"})
    with pytest.raises(errors.UnsupportedOperationError, match="triple"):
        core.compile_model(custom_model(), "CPU")
    with pytest.raises(errors.InvalidPropertyValueError, match="OTHER"):
        core.set_property("CPU", {"MULTI_DEVICE_PRIORITIES": "NUMPY,OTHER"})
        core.compile_model(add_relu(), "CPU")


def test_properties_go_to_the_primary_and_device_properties_to_each(core: aioinfer.Core
                                                                   ) -> None:
    core.set_property("CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    assert core.get_property("NUMPY", "PERFORMANCE_HINT") == "THROUGHPUT"
    assert core.get_property("CPU", "PERFORMANCE_HINT") == "THROUGHPUT"
    assert core.get_property("TEMPLATE", "PERFORMANCE_HINT") == "LATENCY"
    compiled = core.compile_model(custom_model(), "CPU", {
        "PERF_COUNT": True, "DEVICE_PROPERTIES": {"TEMPLATE": {"NUM_STREAMS": 3}}})
    parts = {sub.device: sub for sub in compiled.submodels()}
    assert parts["NUMPY"].get_property("PERF_COUNT") is True
    assert parts["TEMPLATE"].get_property("NUM_STREAMS") == 3
    with pytest.raises(errors.UnknownPropertyError):
        core.get_property("CPU", "NOT_A_KEY")
