"""PERF_COUNT on NUMPY: one record per plan step, plus the stage, and nothing when off."""

from __future__ import annotations

import numpy as np
import pytest

import aioinfer
from aioinfer import errors

from ..models_small import add_relu, linear


def test_records_every_step_with_kernel_and_times() -> None:
    compiled = aioinfer.Core().compile_model(add_relu(), "NUMPY", {"PERF_COUNT": True})
    request = compiled.create_infer_request()
    x = np.ones((1, 16), np.float32)
    request.infer([x, x])
    nodes = [r for r in request.profiling_info if r["node_type"] != "Stage"]
    stages = [r for r in request.profiling_info if r["node_type"] == "Stage"]
    assert [r["node_type"] for r in nodes] and all(r["status"] == "EXECUTED" for r in nodes)
    assert all(r["real_time"] >= 0 and r["cpu_time"] >= 0 for r in nodes)
    assert all("." in r["exec_type"] for r in nodes)  # module.kernel
    assert [s["node_name"] for s in stages] == ["infer"]
    request.infer([x, x])  # records are per inference, not accumulated
    assert len([r for r in request.profiling_info if r["node_type"] != "Stage"]) == len(nodes)


def test_off_by_default_and_switchable() -> None:
    compiled = aioinfer.Core().compile_model(linear(), "NUMPY")
    request = compiled.create_infer_request()
    x = np.ones((2, 8), np.float32)
    request.infer(x)
    assert request.profiling_info == []
    compiled.set_property({"PERF_COUNT": True})
    expected = request.infer(x)["y"]
    assert request.profiling_info
    compiled.set_property({"PERF_COUNT": False})
    np.testing.assert_array_equal(request.infer(x)["y"], expected)


def test_failed_node_is_recorded() -> None:
    compiled = aioinfer.Core().compile_model(linear(), "NUMPY", {"PERF_COUNT": True})
    request = compiled.create_infer_request()
    with pytest.raises(errors.InputShapeError):
        request.infer(np.ones((2, 7), np.float32))  # caught before any kernel runs
    assert [r for r in request.profiling_info if r["node_type"] != "Stage"] == []
