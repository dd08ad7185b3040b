"""MULTI: one queue pulled by whichever device is free; exactly-once delivery."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

import aioinfer
from aioinfer import errors
from aioinfer.testing.behaviour import _expected, _inputs, add_relu_model

from ._plugins import SlowRunPlugin


@pytest.mark.anyio
async def test_every_result_arrives_once_on_its_own_request() -> None:
    compiled = aioinfer.Core().compile_model(add_relu_model(), "MULTI:NUMPY,TEMPLATE")
    assert compiled.get_property("EXECUTION_DEVICES") == ["NUMPY", "TEMPLATE"]
    stats = compiled.statistics()
    assert compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") == sum(
        s["workers"] for s in stats.values())
    seen: list[int] = []

    async def task(t: int) -> None:
        request = compiled.create_infer_request()
        for j in range(8):
            k = t * 8 + j
            inputs = _inputs(k)
            np.testing.assert_allclose((await request.infer_async(inputs))["y"],
                                       _expected(inputs), rtol=1e-6)
            seen.append(k)

    async with anyio.create_task_group() as tg:
        for t in range(16):
            tg.start_soon(task, t)
    assert sorted(seen) == list(range(128))
    assert sum(s["completed"] for s in compiled.statistics().values()) == 128


def _slow_core() -> aioinfer.Core:
    """SLOW: 50 ms a run; FAST: 2 ms a run (sleeping, so the host's cores do not matter)."""
    core = aioinfer.Core()
    core.register_plugin(SlowRunPlugin("SLOW"))
    fast = SlowRunPlugin("FAST")
    fast.run_delay = 0.002
    core.register_plugin(fast)
    return core


@pytest.mark.anyio
@pytest.mark.parametrize("policy", ["EARLIEST_FINISH", "DEVICE_PRIORITY"])
async def test_a_slow_device_takes_only_what_it_finishes_first(policy: str) -> None:
    compiled = _slow_core().compile_model(add_relu_model(), "MULTI:FAST(2),SLOW(2)",
                                          {"SCHEDULE_POLICY": policy})

    async def task(t: int) -> None:
        request = compiled.create_infer_request()
        for j in range(10):
            await request.infer_async(_inputs(t * 10 + j))

    async with anyio.create_task_group() as tg:
        for t in range(16):
            tg.start_soon(task, t)
    slow = compiled.statistics()["SLOW"]["completed"]
    if policy == "EARLIEST_FINISH":
        # 50 ms a run against 2 ms: the runs that measured it, and on a loaded host (FAST's
        # 2 ms sleeps stretched) a few more; never a fair share (160 runs, 4 workers)
        assert slow <= 8, compiled.statistics()
    else:  # OpenVINO's rule: SLOW takes a run whenever FAST's two workers are busy
        assert slow > 2, compiled.statistics()


@pytest.mark.anyio
async def test_a_run_cancelled_while_queued_leaves_the_request_reusable() -> None:
    compiled = _slow_core().compile_model(add_relu_model(), "MULTI:SLOW(1)")
    first, second = compiled.create_infer_request(), compiled.create_infer_request()
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.infer_async, _inputs(0))
        await anyio.sleep(0.01)
        with anyio.move_on_after(0.01) as scope:
            await second.infer_async(_inputs(1))  # queued behind the first
        assert scope.cancelled_caught and not second.busy
    result = await second.infer_async(_inputs(2))
    np.testing.assert_allclose(result["y"], _expected(_inputs(2)), rtol=1e-6)


def test_sync_infer_runs_on_the_first_device_and_errors_are_typed() -> None:
    core = aioinfer.Core()
    compiled = core.compile_model(add_relu_model(), "MULTI:TEMPLATE,NUMPY")
    request = compiled.create_infer_request()
    np.testing.assert_allclose(request.infer(_inputs(3))["y"], _expected(_inputs(3)), rtol=1e-6)
    assert request._sync.executed_on == "TEMPLATE"  # type: ignore[attr-defined]
    with pytest.raises(errors.DeviceNotFoundError, match="NOPE"):
        core.compile_model(add_relu_model(), "MULTI:NUMPY,NOPE")
    with pytest.raises(errors.DeviceNotFoundError, match="virtual"):
        core.compile_model(add_relu_model(), "MULTI:NUMPY,HETERO")
    with pytest.raises(errors.InvalidPropertyValueError, match="SCHEDULE_POLICY"):
        core.compile_model(add_relu_model(), "MULTI:NUMPY", {"SCHEDULE_POLICY": "RANDOM"})
    with pytest.raises(errors.DeviceNotFoundError, match="needs devices"):
        core.compile_model(add_relu_model(), "MULTI")
