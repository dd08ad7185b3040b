"""AUTO: device choice, start-up fallback, runtime fallback, model priority."""

from __future__ import annotations

import threading
import time

import anyio
import numpy as np
import pytest

import aioinfer
from aioinfer import errors
from aioinfer.testing.behaviour import _expected, _inputs, add_relu_model

from ..models_small import unknown_op
from ._plugins import FailingRunPlugin, SlowCompilePlugin, SlowRunPlugin


@pytest.mark.anyio
async def test_startup_fallback_serves_before_the_chosen_device_is_compiled() -> None:
    core = aioinfer.Core()
    slow = SlowCompilePlugin("SLOWCOMPILE")
    core.register_plugin(slow)
    start = time.perf_counter()
    compiled = core.compile_model(add_relu_model(), "AUTO:SLOWCOMPILE,NUMPY")
    assert time.perf_counter() - start < slow.delay  # returned with the helper compiled
    assert compiled.get_property("EXECUTION_DEVICES") == ["NUMPY"]
    arrivals: list[float] = []
    done = 0

    async def task(t: int) -> None:
        nonlocal done
        request = compiled.create_infer_request()
        k, after = 0, 0
        while after < 3:  # until the switch, and a few runs after it
            if compiled.get_property("EXECUTION_DEVICES") == ["SLOWCOMPILE"]:
                after += 1
            inputs = _inputs(t * 1000 + k)
            result = await request.infer_async(inputs)
            np.testing.assert_allclose(result["y"], _expected(inputs), rtol=1e-6)
            arrivals.append(time.perf_counter())
            k += 1
            done += 1
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as tg:
        for t in range(4):
            tg.start_soon(task, t)
    assert arrivals[0] < slow.compiled_at[0]  # the first result came before the switch
    assert compiled.get_property("EXECUTION_DEVICES") == ["SLOWCOMPILE"]
    stats = compiled.statistics()
    assert sum(s["completed"] for s in stats.values()) == done  # nothing lost in the switch
    assert stats["SLOWCOMPILE"]["completed"] >= 1 and not any(s["failed"] for s in stats.values())
    with anyio.fail_after(5):
        while compiled.statistics()["NUMPY"]["serving"] or compiled.lanes.lanes[1:]:
            await anyio.sleep(0.01)  # the helper is dropped (and released) once drained


def test_runtime_fallback_retries_on_the_next_device() -> None:
    core = aioinfer.Core()
    core.register_plugin(FailingRunPlugin("BROKEN"))
    config = {"ENABLE_STARTUP_FALLBACK": False}
    plain = core.compile_model(add_relu_model(), "AUTO:BROKEN,NUMPY", config)
    with pytest.raises(errors.InferenceError, match="lost its mind"):
        plain.create_infer_request().infer(_inputs(0))

    async def check() -> None:
        compiled = core.compile_model(add_relu_model(), "AUTO:BROKEN,NUMPY",
                                      {**config, "ENABLE_RUNTIME_FALLBACK": True})
        assert compiled.get_property("EXECUTION_DEVICES") == ["BROKEN"]
        for k in range(3):
            result = await compiled.create_infer_request().infer_async(_inputs(k))
            np.testing.assert_allclose(result["y"], _expected(_inputs(k)), rtol=1e-6)
        assert compiled.get_property("EXECUTION_DEVICES") == ["NUMPY"]
        sync = compiled.create_infer_request().infer(_inputs(9))
        np.testing.assert_allclose(sync["y"], _expected(_inputs(9)), rtol=1e-6)

    anyio.run(check)


@pytest.mark.anyio
async def test_model_priority_orders_who_gets_the_busy_device() -> None:
    core = aioinfer.Core()
    slow = SlowRunPlugin("SLOW")
    slow.gate = threading.Event()  # closed: the first low run holds SLOW's one worker
    core.register_plugin(slow)
    low = core.compile_model(add_relu_model(), "AUTO:SLOW", {"MODEL_PRIORITY": "LOW"})
    high = core.compile_model(add_relu_model(), "AUTO:SLOW", {"MODEL_PRIORITY": "HIGH"})
    order: list[str] = []

    async def one(compiled: aioinfer.CompiledModel, tag: str, k: int) -> None:
        await compiled.infer_async(_inputs(k))
        order.append(tag)

    async with anyio.create_task_group() as tg:
        for k in range(4):
            tg.start_soon(one, low, "low", k)
        await anyio.sleep(0.05)
        for k in range(2):
            tg.start_soon(one, high, "high", k)
        await anyio.sleep(0.2)  # every run is queued (waiting longer changes nothing)
        slow.gate.set()
    assert order[:3] == ["low", "high", "high"], order


def test_selection_skips_devices_that_cannot_run_the_model() -> None:
    core = aioinfer.Core()
    compiled = core.compile_model(add_relu_model(), "AUTO:NUMPY,TEMPLATE")
    assert compiled.get_property("EXECUTION_DEVICES") in (["TEMPLATE"], ["NUMPY"])
    with pytest.raises(errors.UnsupportedOperationError, match="mystery"):
        core.compile_model(unknown_op(), "AUTO:NUMPY,TEMPLATE")
    assert core.query_model(unknown_op(), "AUTO:NUMPY") == {}
    cumulative = core.compile_model(add_relu_model(), "AUTO:NUMPY,TEMPLATE",
                                    {"PERFORMANCE_HINT": "CUMULATIVE_THROUGHPUT"})
    assert cumulative.get_property("EXECUTION_DEVICES") == ["NUMPY", "TEMPLATE"]
    with pytest.raises(errors.InvalidPropertyValueError, match="MODEL_PRIORITY"):
        core.compile_model(add_relu_model(), "AUTO", {"MODEL_PRIORITY": "URGENT"})
