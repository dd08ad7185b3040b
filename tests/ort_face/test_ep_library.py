"""Plugin EP libraries: registration, EP devices, selection policies, the example EP through
HETERO with NUMPY, compared against onnxruntime."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import aioinfer
import aioinfer.onnxruntime as ort
from aioinfer import errors
from aioinfer.ort.ep.examples import fused_elementwise

from .conftest import oracle

NAME = "FusedElementwise"
MODULE = "aioinfer.ort.ep.examples.fused_elementwise"


@pytest.fixture
def library() -> Iterator[str]:
    ort.register_execution_provider_library(NAME, MODULE)
    try:
        yield NAME
    finally:
        ort.unregister_execution_provider_library(NAME)


@pytest.fixture
def numpy_core() -> aioinfer.Core:
    """A Core whose CPU proxy runs on NUMPY (the CPU EP fallback is then NUMPY)."""
    core = aioinfer.Core()
    core.set_property("CPU", {"MULTI_DEVICE_PRIORITIES": "NUMPY"})
    return core


def chain_model(shape: tuple[int, ...] = (4, 64)) -> onnx.ModelProto:
    """MatMul (not elementwise) -> Mul/Add/Sigmoid/Mul/Relu chain -> MatMul."""
    rng = np.random.default_rng(0)
    n = shape[-1]
    inits = [numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32) / 8, "W"),
             numpy_helper.from_array(np.float32(1.5), "k"),
             numpy_helper.from_array(np.float32(-0.25), "c")]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm1"),
             helper.make_node("Mul", ["h", "k"], ["a"], name="mul"),
             helper.make_node("Add", ["a", "c"], ["b"], name="add"),
             helper.make_node("Sigmoid", ["b"], ["s"], name="sig"),
             helper.make_node("Mul", ["s", "h"], ["m"], name="swish"),
             helper.make_node("LeakyRelu", ["m"], ["r"], name="lrelu", alpha=0.1),
             helper.make_node("MatMul", ["r", "W"], ["y"], name="mm2")]
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_register_lists_devices_and_providers(library: str) -> None:
    devices = ort.get_ep_devices()
    assert devices[0].ep_name == "CPUExecutionProvider"
    mine = [d for d in devices if d.ep_name == library]
    assert len(mine) == 1
    device = mine[0]
    assert device.ep_vendor == "aioinfer" and device.ep_options == {"min_chain": "2"}
    assert device.device.type == ort.OrtHardwareDeviceType.CPU
    assert library in ort.get_available_providers()
    with pytest.raises(errors.PluginLoadError, match="already registered"):
        ort.register_execution_provider_library(library, MODULE)


def test_register_errors() -> None:
    with pytest.raises(errors.PluginLoadError, match="does not exist"):
        ort.register_execution_provider_library("X", "/no/such/lib.py")
    with pytest.raises(errors.PluginLoadError, match="must export create_ep_factories"):
        ort.register_execution_provider_library("X", "aioinfer.ort.nodearg")
    with pytest.raises(errors.PluginLoadError, match="no EP library"):
        ort.unregister_execution_provider_library("X")


def test_example_ep_through_add_provider_for_devices(library: str,
                                                     numpy_core: aioinfer.Core) -> None:
    proto = chain_model()
    options = ort.SessionOptions()
    options.add_provider_for_devices([d for d in ort.get_ep_devices() if d.ep_name == library],
                                     {"min_chain": "2"})
    session = ort.InferenceSession(proto.SerializeToString(), options, core=numpy_core)
    assert session.device == "HETERO:FUSEDELEMENTWISE,CPU"
    assert session.get_providers() == [library, "CPUExecutionProvider"]
    parts = sorted(m.device for m in session.compiled_model.submodels())
    assert parts == ["FUSEDELEMENTWISE", "NUMPY", "NUMPY"]  # MatMul | chain | MatMul
    x = np.random.default_rng(2).standard_normal((4, 64)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], oracle(proto, {"x": x})[0],
                               rtol=1e-5, atol=1e-5)
    plugin = numpy_core._plugin("FUSEDELEMENTWISE")
    claimed = numpy_core.query_model(proto, "FUSEDELEMENTWISE", {})
    assert sorted(claimed) == ["add", "lrelu", "mul", "sig", "swish"]
    assert plugin.sync_stream().memory_device == "host"
    assert plugin.data_transfer().can_copy("host", "host")


def test_example_ep_numpy_fallback_and_options(library: str, numpy_core: aioinfer.Core) -> None:
    proto = chain_model()
    x = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=[(library, {"compiler": "numpy"})], core=numpy_core)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], oracle(proto, {"x": x})[0],
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(errors.InvalidPropertyValueError, match="min_chain"):
        ort.InferenceSession(proto.SerializeToString(),
                             providers=[(library, {"min_chain": "zero"})], core=numpy_core)
    # alone, without the CPU fallback, the EP refuses the MatMuls it does not claim
    options = ort.SessionOptions()
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    with pytest.raises(errors.UnsupportedOperationError, match="'mm1'"):
        ort.InferenceSession(proto.SerializeToString(), options, providers=[library],
                             core=numpy_core)


def test_selection_policies(library: str, numpy_core: aioinfer.Core) -> None:
    proto = chain_model().SerializeToString()
    policies = ort.OrtExecutionProviderDevicePolicy
    # a CPU-preferring policy takes the plugin EP's CPU device first; with no GPU or NPU here,
    # a GPU- or NPU-preferring one falls back to the CPU EP (onnxruntime's PreferGpuEpPolicy)
    for policy, expected in [(policies.PREFER_CPU, [library, "CPUExecutionProvider"]),
                             (policies.DEFAULT, [library, "CPUExecutionProvider"]),
                             (policies.MAX_PERFORMANCE, ["CPUExecutionProvider"]),
                             (policies.MIN_OVERALL_POWER, ["CPUExecutionProvider"])]:
        options = ort.SessionOptions()
        options.set_provider_selection_policy(policy)
        session = ort.InferenceSession(proto, options, core=numpy_core)
        assert session.get_providers() == expected, policy

    def only_cpu(devices, model_meta, runtime_meta, max_selections):  # type: ignore[no-untyped-def]
        return [d for d in devices if d.ep_name == "CPUExecutionProvider"]

    options = ort.SessionOptions()
    options.set_provider_selection_policy_delegate(only_cpu)
    assert ort.InferenceSession(proto, options, core=numpy_core).get_providers() == [
        "CPUExecutionProvider"]
    options.set_provider_selection_policy_delegate(lambda *a: [])
    with pytest.raises(errors.DeviceNotFoundError, match="chose no device"):
        ort.InferenceSession(proto, options, core=numpy_core)
    with pytest.raises(errors.InvalidPropertyValueError, match="PREFER_CPU"):
        options.set_provider_selection_policy(42)  # type: ignore[arg-type]


def test_fused_kernel_source_is_one_loop() -> None:
    model = aioinfer.Core().read_model(chain_model())
    sub = model.extract(["mul", "add", "sig", "swish", "lrelu"], ["h"], ["r"])
    source = fused_elementwise.codegen.source(fused_elementwise.group_of(sub))
    assert source.count(" for ") == 1 and "exp1(" in source  # one loop over the elements


def test_every_wired_hook_of_an_ep_library_is_called(numpy_core: aioinfer.Core) -> None:
    """A library recording its hooks (tests/ort_face/recording_ep.py): registration, devices,
    EP creation with its options, capability (a fused chain and a single node), compile, the
    node compute infos' state and compute, run start/end, streams and transfers, release."""
    from . import recording_ep

    recording_ep.CALLS.clear()
    ort.register_execution_provider_library("Recording", "tests.ort_face.recording_ep")
    try:
        proto = chain_model()
        proto.graph.node[-1].output[0] = "pre"
        proto.graph.node.append(helper.make_node("Relu", ["pre"], ["y"], name="lone"))
        devices = [d for d in ort.get_ep_devices() if d.ep_name == "Recording"]
        options = ort.SessionOptions()
        options.add_provider_for_devices(devices, {"min_chain": "3"})
        session = ort.InferenceSession(proto.SerializeToString(), options, core=numpy_core)
        x = np.random.default_rng(4).standard_normal((4, 64)).astype(np.float32)
        np.testing.assert_allclose(session.run(None, {"x": x})[0], oracle(proto, {"x": x})[0],
                                   rtol=1e-5, atol=1e-5)
        session.set_ep_dynamic_options({"ep.dynamic.workload_type": "Efficient"})
        with pytest.raises(errors.InvalidPropertyValueError, match="str to str"):
            session.set_ep_dynamic_options({"threads": 2})  # type: ignore[dict-item]
        plain = ort.InferenceSession(proto.SerializeToString(), core=numpy_core)
        with pytest.raises(errors.NotSupportedError, match="no plugin EP"):
            plain.set_ep_dynamic_options({"a": "b"})
        session.compiled_model.release()
        del session  # a request's states are released with it
        gc.collect()
    finally:
        ort.unregister_execution_provider_library("Recording")
    calls = recording_ep.CALLS
    for expected in ("create_ep_factories", "get_supported_devices",
                     "create_ep:{'min_chain': '3'}", "get_capability", "create_data_transfer",
                     "is_stream_aware", "create_sync_stream_for_device:host", "on_run_start",
                     "compute", "on_run_end", "release_state", "release_ep",
                     "set_dynamic_options:{'ep.dynamic.workload_type': 'Efficient'}",
                     "release_ep_factory"):
        assert expected in calls, (expected, calls)
    assert sum(c.startswith("create_state:") for c in calls) == 2  # the chain, the lone Relu
    assert calls.index("on_run_start") < calls.index("compute") < calls.index("on_run_end")
