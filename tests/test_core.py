"""Core: devices, plugin registration, properties, read/compile/query."""

from __future__ import annotations

import numpy as np
import pytest

import aioinfer
from aioinfer import errors
from aioinfer.plugins.numpy import NumpyPlugin

from .models_small import add_relu, linear, unknown_op


def test_available_devices_include_builtins() -> None:
    core = aioinfer.Core()
    devices = core.available_devices
    assert "CPU" in devices and not {"NUMPY", "TEMPLATE"} & set(devices)  # behind the proxy
    assert core.get_property("NUMPY", "FULL_DEVICE_NAME")  # and addressable by name


def test_unknown_device_is_a_typed_error_naming_it() -> None:
    with pytest.raises(errors.DeviceNotFoundError, match="NOPE") as info:
        aioinfer.Core().compile_model(add_relu(), "NOPE")
    assert info.value.device == "NOPE"


def test_cpu_resolves_to_its_primary_plugin() -> None:
    core = aioinfer.Core()
    compiled = core.compile_model(add_relu(), "CPU")
    primary = core.get_property("CPU", "PROXY_ALIAS_FOR")[0]  # NUMPY, or an installed engine
    [device] = compiled.get_property("EXECUTION_DEVICES")
    assert device.split(".")[0] == primary


def test_register_plugin_instance_and_import_path() -> None:
    core = aioinfer.Core()
    core.register_plugin(NumpyPlugin("MYDEV"), "MYDEV")
    core.register_plugin("aioinfer.plugins.numpy:NumpyPlugin", "OTHER")
    assert {"MYDEV", "OTHER"} <= set(core.available_devices)
    x = np.ones((1, 16), np.float32)
    out = core.compile_model(add_relu(), "OTHER")({"a": x, "b": x})
    np.testing.assert_array_equal(out["d"], 2 * x)


def test_register_plugin_that_fails_to_load() -> None:
    core = aioinfer.Core()
    core.register_plugin("aioinfer.does_not_exist:Plugin", "BROKEN")
    with pytest.raises(errors.PluginLoadError, match="BROKEN"):
        core.compile_model(add_relu(), "BROKEN")
    assert "BROKEN" not in core.available_devices


def test_register_plugin_that_is_not_a_plugin() -> None:
    core = aioinfer.Core()
    core.register_plugin(lambda name: object(), "ODD")
    with pytest.raises(errors.PluginLoadError, match="not an aioinfer"):
        core.get_property("ODD", "FULL_DEVICE_NAME")


def test_get_and_set_property() -> None:
    core = aioinfer.Core()
    core.set_property("NUMPY", {"PERFORMANCE_HINT": "throughput"})
    assert core.get_property("NUMPY", "PERFORMANCE_HINT") == "THROUGHPUT"
    core.set_property("CPU", {"MULTI_DEVICE_PRIORITIES": "NUMPY,TEMPLATE"})
    assert core.get_property("CPU", "PERFORMANCE_HINT") == "THROUGHPUT"  # from the primary
    supported = core.get_property("NUMPY", "SUPPORTED_PROPERTIES")
    assert supported["FULL_DEVICE_NAME"] == "RO" and supported["NUM_STREAMS"] == "RW"


def test_property_errors_are_typed_and_named() -> None:
    core = aioinfer.Core()
    with pytest.raises(errors.UnknownPropertyError, match="NOT_A_KEY") as unknown:
        core.get_property("NUMPY", "NOT_A_KEY")
    assert unknown.value.key == "NOT_A_KEY" and unknown.value.device == "NUMPY"
    with pytest.raises(errors.ReadOnlyPropertyError, match="FULL_DEVICE_NAME"):
        core.set_property("NUMPY", {"FULL_DEVICE_NAME": "x"})
    with pytest.raises(errors.InvalidPropertyValueError, match="PERFORMANCE_HINT"):
        core.set_property("NUMPY", {"PERFORMANCE_HINT": "FASTEST"})
    with pytest.raises(errors.InvalidPropertyValueError, match="NUM_STREAMS"):
        core.compile_model(add_relu(), "NUMPY", {"NUM_STREAMS": -2})


def test_set_property_is_all_or_nothing() -> None:
    core = aioinfer.Core()
    with pytest.raises(errors.InvalidPropertyValueError):
        core.set_property("NUMPY", {"PERF_COUNT": True, "NUM_STREAMS": "many"})
    assert core.get_property("NUMPY", "PERF_COUNT") is False


def test_compile_config_sets_streams_and_optimal_requests() -> None:
    core = aioinfer.Core()
    compiled = core.compile_model(add_relu(), "NUMPY", {"NUM_STREAMS": 3})
    assert compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") == 3
    latency = core.compile_model(add_relu(), "NUMPY", {"PERFORMANCE_HINT": "LATENCY"})
    assert latency.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") == 1


def test_compile_from_path_bytes_and_proto(tmp_path) -> None:
    model = linear()
    path = tmp_path / "linear.onnx"
    path.write_bytes(model.SerializeToString())
    core = aioinfer.Core()
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    outs = [core.compile_model(src, "NUMPY")(x)["y"]
            for src in (str(path), path, model.SerializeToString(), model, core.read_model(path))]
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])
    assert outs[0].shape == (3, 4)


def test_query_model_names_supported_nodes() -> None:
    core = aioinfer.Core()
    assert core.query_model(linear(), "NUMPY") == {"matmul": "NUMPY", "bias": "NUMPY"}
    assert core.query_model(unknown_op(), "NUMPY") == {}


def test_unknown_op_raises_naming_node_and_op() -> None:
    with pytest.raises(errors.UnsupportedOperationError, match="mystery") as info:
        aioinfer.Core().compile_model(unknown_op(), "NUMPY")
    assert info.value.node == "mystery" and info.value.op_type == "Frobnicate"
    assert isinstance(info.value, NotImplementedError)
