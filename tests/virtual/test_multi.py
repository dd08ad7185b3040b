"""MULTI: one queue pulled by whichever device is free; exactly-once delivery."""

from __future__ import annotations

import math
import time

import anyio
import numpy as np
import pytest

import aioinfer
from aioinfer import errors
from aioinfer.properties import host_cores
from aioinfer.testing.behaviour import _expected, _inputs, add_relu_model

from ._plugins import OwnComputePlugin, ReusingPlugin, SlowRunPlugin


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


def _slow_core(own_compute: bool = False, slow: float = 0.05,
               fast: float = 0.002) -> aioinfer.Core:
    """SLOW and FAST sleep ``slow`` and ``fast`` seconds a run (so the host's load does not
    change their speed); both report the host CPU's DEVICE_UUID unless SLOW has
    ``own_compute`` (an accelerator's)."""
    core = aioinfer.Core()
    slow_plugin = (OwnComputePlugin if own_compute else SlowRunPlugin)("SLOW")
    slow_plugin.run_delay = slow
    core.register_plugin(slow_plugin)
    fast_plugin = SlowRunPlugin("FAST")
    fast_plugin.run_delay = fast
    core.register_plugin(fast_plugin)
    return core


async def _load(compiled: aioinfer.CompiledModel, tasks: int, runs: int) -> list[int]:
    """``tasks`` tasks of ``runs`` checked runs each; the tags of the results, in order."""
    seen: list[int] = []

    async def task(t: int) -> None:
        request = compiled.create_infer_request()
        for j in range(runs):
            inputs = _inputs(t * runs + j)
            np.testing.assert_allclose((await request.infer_async(inputs))["y"],
                                       _expected(inputs), rtol=1e-6)
            seen.append(t * runs + j)

    async with anyio.create_task_group() as tg:
        for t in range(tasks):
            tg.start_soon(task, t)
    return seen


@pytest.mark.anyio
@pytest.mark.parametrize("policy", ["EARLIEST_FINISH", "DEVICE_PRIORITY"])
async def test_a_slow_device_on_the_same_cores_takes_no_runs(policy: str) -> None:
    # FAST's workers cover the host's cores: any run on SLOW would take a core from FAST
    cores = host_cores()
    compiled = _slow_core().compile_model(add_relu_model(), f"MULTI:FAST({cores}),SLOW(2)",
                                          {"SCHEDULE_POLICY": policy})
    tasks = 4 * cores + 4
    start = time.monotonic()
    assert sorted(await _load(compiled, tasks, 10)) == list(range(tasks * 10))
    elapsed = time.monotonic() - start
    slow = compiled.statistics()["SLOW"]["completed"]
    if policy == "EARLIEST_FINISH":
        # only its probes: a warm-up and a timed run, then one 1, 3, 7... s later
        probes = 2 + int(math.log2(elapsed + 1.0)) + 1
        assert slow <= probes, (compiled.statistics(), elapsed)
    else:  # OpenVINO's rule: SLOW takes a run whenever FAST's workers are busy
        assert slow > 2, compiled.statistics()


@pytest.mark.anyio
async def test_a_fast_device_listed_second_or_slow_to_warm_up_still_gets_the_runs() -> None:
    cores = host_cores()
    # SLOW first, with workers covering the cores: FAST is probed, measured, preferred
    compiled = _slow_core().compile_model(add_relu_model(), f"MULTI:SLOW({cores}),FAST(1)")
    assert sorted(await _load(compiled, 2 * cores + 2, 12)) == list(range((2 * cores + 2) * 12))
    stats = compiled.statistics()
    assert stats["FAST"]["completed"] > 2 * stats["SLOW"]["completed"], stats
    # FAST's first run takes 0.3 s (a warm-up): it is not taken for FAST's speed
    core = _slow_core()
    warming = SlowRunPlugin("WARMING")
    warming.run_delay, warming.first_delay = 0.002, 0.3
    core.register_plugin(warming)
    compiled = core.compile_model(add_relu_model(), "MULTI:WARMING(1),SLOW(1)")
    assert sorted(await _load(compiled, 6, 10)) == list(range(60))
    stats = compiled.statistics()
    assert stats["WARMING"]["completed"] > 3 * stats["SLOW"]["completed"], stats


@pytest.mark.anyio
async def test_a_slow_device_of_its_own_takes_the_overflow_of_a_deep_queue() -> None:
    # 30 ms against 10 ms and no shared cores: SLOW finishes a run before FAST would get to
    # it once two runs are queued in front of it, and only then
    compiled = _slow_core(own_compute=True, slow=0.03, fast=0.01).compile_model(
        add_relu_model(), "MULTI:FAST(1),SLOW(1)")
    assert sorted(await _load(compiled, 1, 20)) == list(range(20))
    assert compiled.statistics()["SLOW"]["completed"] == 0  # never a queue: FAST is free
    assert sorted(await _load(compiled, 12, 8)) == list(range(96))
    stats = compiled.statistics()
    assert 0 < stats["SLOW"]["completed"] < stats["FAST"]["completed"] - 20, stats


@pytest.mark.anyio
async def test_results_of_a_device_that_reuses_its_buffers_are_copied() -> None:
    core = aioinfer.Core()
    core.register_plugin(ReusingPlugin("REUSING"))
    reusing = core.compile_model(add_relu_model(), "MULTI:REUSING(1)")
    plain = core.compile_model(add_relu_model(), "MULTI:NUMPY(1)")
    for compiled, copied in ((reusing, True), (plain, False)):
        first, second = compiled.create_infer_request(), compiled.create_infer_request()
        kept = (await first.infer_async(_inputs(1)))["y"]
        await second.infer_async(_inputs(2))  # the same worker runs again
        np.testing.assert_array_equal(kept, _expected(_inputs(1)))
        [lane] = compiled.lanes.lanes  # type: ignore[attr-defined]
        assert lane.fresh is not copied


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
