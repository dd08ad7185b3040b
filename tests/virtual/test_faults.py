"""Faults inside MULTI, AUTO and BATCH: a sub-request that fails takes down only the
requests that were in it, each with its cause; AUTO's runtime fallback retries elsewhere; the
requests stay reusable and no thread is left behind.

The faults are real: a custom operation (an extension, run by NUMPY's and TEMPLATE's own
kernels) that raises mid-plan on a marked sample, and a NUMPY subclass that fails marked
runs (``_plugins.TripwirePlugin``), both registered in the test's own Core.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anyio
import numpy as np
import pytest
from onnx import TensorProto, helper

import aioinfer
from aioinfer import errors
from aioinfer.testing.behaviour import _expected, _inputs, add_relu_model

from ._plugins import MARK, TripwirePlugin

WEIGHT = np.random.default_rng(3).standard_normal((8, 8)).astype(np.float32)


class Tripwire(aioinfer.Op):
    """Identity that raises on a sample holding MARK (as a custom kernel hitting bad data)."""

    domain = "test.faults"

    def infer_shape(self, inputs: Any, **attributes: Any) -> Any:
        return [inputs[0]]

    def evaluate(self, x: np.ndarray, **attributes: Any) -> np.ndarray:
        if (x == MARK).any():
            raise ValueError("tripwire: a marked sample")
        return x


def _model() -> Any:
    """y = Tripwire(x) @ W, x [N, 8]: batchable, and failing in its first node on MARK."""
    graph = helper.make_graph(
        [helper.make_node("Tripwire", ["x"], ["t"], name="trip", domain="test.faults"),
         helper.make_node("MatMul", ["t", "W"], ["y"], name="matmul")],
        "tripwire",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, WEIGHT.shape, WEIGHT.ravel())],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("test.faults", 1)])


def _x(k: int, marked: bool = False) -> np.ndarray:
    x = np.random.default_rng(k).standard_normal((1, 8)).astype(np.float32)
    if marked:
        x[0, 3] = MARK
    return x


def _core() -> aioinfer.Core:
    core = aioinfer.Core()
    core.add_extension(Tripwire)
    return core


def _ours() -> int:
    """aioinfer's threads (the event loop library's own thread caches are not counted)."""
    return sum(t.name.startswith("aioinfer:") for t in threading.enumerate())


def _settled(baseline: int, timeout: float = 10.0) -> bool:
    """Whether aioinfer's thread count comes back to ``baseline``: a released model's workers
    are joined, the shared ones (HOST, the batch timer) exit after a few idle seconds."""
    deadline = time.monotonic() + timeout
    while _ours() > baseline:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def _mixed(compiled: aioinfer.CompiledModel, tasks: int, runs: int,
                 marked: set[int]) -> dict[int, Any]:
    """``tasks`` tasks of ``runs`` runs; the result or error of each tagged run. A request
    whose run failed runs its next sample on the same request."""
    outcome: dict[int, Any] = {}

    async def task(t: int) -> None:
        request = compiled.create_infer_request()
        for j in range(runs):
            tag = t * runs + j
            try:
                outcome[tag] = (await request.infer_async({"x": _x(tag, tag in marked)}))["y"]
            except errors.AioInferError as exc:
                outcome[tag] = exc

    async with anyio.create_task_group() as tg:
        for t in range(tasks):
            tg.start_soon(task, t)
    return outcome


def _check(outcome: dict[int, Any], marked: set[int], total: int) -> None:
    assert sorted(outcome) == list(range(total))
    for tag, got in outcome.items():
        if tag in marked:
            assert isinstance(got, errors.InferenceError), (tag, got)
            assert got.node == "trip" and "marked sample" in str(got), got
        else:
            assert isinstance(got, np.ndarray), (tag, got)
            np.testing.assert_allclose(got, _x(tag) @ WEIGHT, rtol=1e-5, atol=1e-5)


@pytest.mark.anyio
async def test_a_kernel_failing_in_multi_fails_only_its_own_requests(
        anyio_backend: tuple[str, dict[str, object]]) -> None:
    baseline = _ours()
    compiled = _core().compile_model(_model(), "MULTI:NUMPY,TEMPLATE")
    marked = {3, 17, 18, 40, 63}
    _check(await _mixed(compiled, 16, 4, marked), marked, 64)
    stats = compiled.statistics()
    assert sum(s["failed"] for s in stats.values()) == len(marked), stats
    assert sum(s["completed"] for s in stats.values()) == 64 - len(marked), stats
    compiled.release()
    if anyio_backend == ("asyncio", {}):  # once is enough: the wait is the idle exit
        assert _settled(baseline), [t.name for t in threading.enumerate()]


@pytest.mark.anyio
async def test_a_failed_batch_fails_only_the_sample_that_failed_it(
        anyio_backend: tuple[str, dict[str, object]]) -> None:
    baseline = _ours()
    compiled = _core().compile_model(_model(), "BATCH:NUMPY(4)", {"AUTO_BATCH_TIMEOUT": 10000})
    assert compiled.get_property("BATCH_SIZE") == 4
    marked = {5, 22}  # in two different batches (8 tasks of 4 runs: 8 batches of 4)
    _check(await _mixed(compiled, 8, 4, marked), marked, 32)
    stats = compiled.statistics()
    assert stats["retried"] == 8, stats  # the two failed batches, run again one by one
    compiled.release()
    if anyio_backend == ("asyncio", {}):  # once is enough: the wait is the idle exit
        assert _settled(baseline), [t.name for t in threading.enumerate()]


@pytest.mark.anyio
async def test_auto_runtime_fallback_retries_a_failed_run_on_the_next_device() -> None:
    core = aioinfer.Core()
    core.register_plugin(TripwirePlugin("TRIP"))
    config = {"ENABLE_STARTUP_FALLBACK": False}
    request_inputs = _inputs(1)
    request_inputs["a"][0, 0] = MARK
    plain = core.compile_model(add_relu_model(), "AUTO:TRIP,NUMPY", config)
    request = plain.create_infer_request()
    with pytest.raises(errors.InferenceError, match="marked input on TRIP"):
        await request.infer_async(request_inputs)
    good = await request.infer_async(_inputs(2))  # the same request, reused
    np.testing.assert_allclose(good["y"], _expected(_inputs(2)), rtol=1e-6)
    assert plain.get_property("EXECUTION_DEVICES") == ["TRIP"]  # one failure moves nothing

    fallback = core.compile_model(add_relu_model(), "AUTO:TRIP,NUMPY",
                                  {**config, "ENABLE_RUNTIME_FALLBACK": True})
    request = fallback.create_infer_request()
    with pytest.raises(errors.InputTypeError, match="'a'"):  # every device would refuse it
        await request.infer_async({"a": request_inputs["a"].astype(np.float64),
                                   "b": request_inputs["b"]})
    assert fallback.get_property("EXECUTION_DEVICES") == ["TRIP"]  # not retried elsewhere
    retried = await request.infer_async(request_inputs)
    np.testing.assert_allclose(retried["y"], _expected(request_inputs), rtol=1e-6)
    assert fallback.get_property("EXECUTION_DEVICES") == ["NUMPY"]
    stats = fallback.statistics()
    assert stats["TRIP"]["failed"] == 2 and stats["NUMPY"]["completed"] == 1, stats
