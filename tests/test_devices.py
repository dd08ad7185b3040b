"""Device strings, the Core view plugins get, and executors shared per stream configuration."""

from __future__ import annotations

import numpy as np
import pytest

import aioinfer
from aioinfer.devices import DeviceName, parse_device
from aioinfer.errors import DeviceNotFoundError

from .models_small import add_relu


def test_parse_device_forms():
    assert parse_device("numpy") == DeviceName("NUMPY")
    assert parse_device("GPU.1") == DeviceName("GPU", "1")
    hetero = parse_device("HETERO:NUMPY,TEMPLATE")
    assert hetero.name == "HETERO" and [t.name for t in hetero.targets] == ["NUMPY", "TEMPLATE"]
    batch = parse_device("BATCH:NUMPY(4)")
    assert batch.targets == (DeviceName("NUMPY", count=4),)
    multi = parse_device("MULTI:GPU.0(2),CPU")
    assert multi.targets[0] == DeviceName("GPU", "0", count=2)
    assert str(multi) == "MULTI:GPU.0(2),CPU"
    assert str(parse_device(" hetero:numpy , template ")) == "HETERO:NUMPY,TEMPLATE"


@pytest.mark.parametrize(("text", "why"), [
    ("", "non-empty"), ("HETERO:", "at least one device"), ("HETERO:A,,B", "empty device"),
    ("HETERO:A,a", "listed twice"), ("N@PY", "not a device name"), ("BATCH:NUMPY(x)", "not a"),
])
def test_bad_device_strings_are_typed_errors(text, why):
    with pytest.raises(DeviceNotFoundError, match=why):
        parse_device(text)


def test_core_keeps_device_ids_and_refuses_unknown_ones():
    core = aioinfer.Core()
    with pytest.raises(DeviceNotFoundError, match="NUMPY has one device, no ids"):
        core.compile_model(add_relu(), "NUMPY.1")
    with pytest.raises(DeviceNotFoundError, match="not a virtual device"):
        core.compile_model(add_relu(), "NUMPY:TEMPLATE")
    assert "HETERO" not in core.available_devices  # virtual devices are built over these


def test_plugins_get_a_view_of_their_core():
    core = aioinfer.Core()
    view = core._plugin("HETERO").get_core()
    assert "CPU" in view.available_devices  # NUMPY is behind the CPU proxy
    assert view.query_model(core.read_model(add_relu()), "NUMPY") == {"add": "NUMPY",
                                                                        "relu": "NUMPY"}
    assert view.plugin("TEMPLATE").name == "TEMPLATE"


def test_compiled_models_share_the_executor_of_their_stream_configuration():
    core = aioinfer.Core()
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2}
    first = core.compile_model(add_relu(), "NUMPY", config)
    second = core.compile_model(add_relu([2, 8]), "NUMPY", config)
    other = core.compile_model(add_relu(), "NUMPY", {"NUM_STREAMS": 1})
    assert first.executor is second.executor and other.executor is not first.executor
    registry = core._plugin("NUMPY").executors
    assert registry.leases(first.executor) == 2
    a = np.ones((1, 16), np.float32)
    first.release()
    assert not first.executor._pool.closed  # still leased by the second model
    b = np.ones((2, 8), np.float32)
    np.testing.assert_array_equal(second([b, b])[0], np.full((2, 8), 2, np.float32))
    second.release()
    assert first.executor._pool.closed and registry.leases(first.executor) == 0
    third = core.compile_model(add_relu(), "NUMPY", config)  # a fresh executor is leased
    assert third.executor is not first.executor
    np.testing.assert_array_equal(third([a, a])[0], np.full((1, 16), 2, np.float32))
    third.release()
    other.release()
