"""await request.infer_async on asyncio, uvloop and trio: results, errors, cancellation."""

from __future__ import annotations

import threading

import anyio
import numpy as np
import pytest

import aioinfer
from aioinfer.errors import InputShapeError, RequestBusyError

from .models import (
    LoopLag,
    gate_request,
    matmul_chain,
    matmul_chain_reference,
    wait_busy,
)

pytestmark = pytest.mark.anyio


def _pair(k: float) -> list[np.ndarray]:
    return [np.full((1, 16), k, np.float32), np.arange(16, dtype=np.float32)[None]]


async def test_results_match_and_run_off_the_loop(add_compiled):
    request = add_compiled.create_infer_request()
    seen: list[str] = []
    loop_thread = threading.current_thread().name
    results = await request.infer_async(_pair(2.0))
    np.testing.assert_array_equal(results["y"], 2.0 + np.arange(16, dtype=np.float32)[None])
    assert request.results is results and not request.busy
    # the stage ran on a named worker thread, not on the loop's thread
    sync = request._sync
    original = sync.stages()[0].fn
    request._stages = [type(request._stages[0])(
        "probe", request._stages[0].executor,
        lambda: (seen.append(threading.current_thread().name), original())[1])]
    await request.infer_async(_pair(1.0))
    assert seen and seen[0] != loop_thread and seen[0].startswith("aioinfer:")


async def test_many_concurrent_requests_get_their_own_results(add_compiled):
    requests = [add_compiled.create_infer_request() for _ in range(16)]
    got: dict[int, float] = {}

    async def one(k: int) -> None:
        for j in range(20):
            results = await requests[k].infer_async(_pair(float(k * 100 + j)))
            assert results["y"][0, 0] == k * 100 + j
        got[k] = float(results["y"][0, 1])

    async with anyio.create_task_group() as tg:
        for k in range(16):
            tg.start_soon(one, k)
    assert got == {k: k * 100 + 19 + 1.0 for k in range(16)}


async def test_input_error_is_typed_and_request_stays_usable(add_compiled):
    request = add_compiled.create_infer_request()
    with pytest.raises(InputShapeError) as info:
        await request.infer_async([np.zeros((2, 16), np.float32)] * 2)
    assert info.value.input_name == "a"
    assert not request.busy
    assert (await request.infer_async(_pair(1.0)))["y"][0, 0] == 1.0


async def test_busy_request_raises(slow_compiled):
    request = slow_compiled.create_infer_request()
    gate = gate_request(request)
    x = np.ones((128, 128), np.float32)
    async with anyio.create_task_group() as tg:
        tg.start_soon(request.infer_async, x)
        await wait_busy(request)
        with pytest.raises(RequestBusyError):
            await request.infer_async(x)
        with pytest.raises(RequestBusyError):
            request.infer(x)
        gate.set()
    assert not request.busy


async def test_cancelled_await_leaves_request_reusable(slow_compiled):
    request = slow_compiled.create_infer_request()
    x = np.random.default_rng(1).standard_normal((128, 128)).astype(np.float32)
    for delay in (0.0, 0.0005, 0.002, 0.01):
        with anyio.move_on_after(delay) as scope:
            await request.infer_async(x)
        # the await returned only once the stage had stopped: the request is free at once
        assert not request.busy, delay
        assert scope.cancelled_caught or delay > 0
    results = await request.infer_async(x)
    np.testing.assert_allclose(results[0], matmul_chain_reference(x), rtol=1e-4, atol=1e-4)


async def test_cancel_from_outside_raises_request_cancelled(slow_compiled):
    from aioinfer.errors import RequestCancelledError

    request = slow_compiled.create_infer_request()
    x = np.ones((128, 128), np.float32)
    gate = gate_request(request)
    outcome: list[BaseException] = []

    async def runner() -> None:
        try:
            await request.infer_async(x)
        except RequestCancelledError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(runner)
        await wait_busy(request)
        request.cancel()
        gate.set()  # the gate stage ends; the run stops before the model's stage
    assert len(outcome) == 1 and not request.busy
    assert request._results is None  # nothing was computed


async def test_loop_is_not_blocked_while_inferring(slow_compiled):
    # a 0.3 s stage: run on the loop thread it would delay the 1 ms ticker by >= 0.3 s
    request = slow_compiled.create_infer_request()
    gate = gate_request(request)
    x = np.ones((128, 128), np.float32)
    lag = LoopLag()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lag.run)
        threading.Timer(0.3, gate.set).start()
        await request.infer_async(x)
        for _ in range(5):
            await request.infer_async(x)
        lag.stop()
    assert len(lag.delays) > 20
    assert lag.worst < 0.2, f"the loop stalled for {lag.worst * 1e3:.1f} ms"


async def test_sync_infer_inside_running_loop(add_compiled):
    # a Jupyter cell calls infer() with a loop running on this thread: no deadlock
    results = add_compiled.create_infer_request().infer(_pair(3.0))
    assert results["y"][0, 0] == 3.0
    assert add_compiled(_pair(4.0))["y"][0, 0] == 4.0


async def test_executor_run_returns_value_and_error():
    from aioinfer.runtime.executors import Executor

    executor = Executor("probe", workers=2)
    assert await executor.run(lambda: threading.current_thread().name) != \
        threading.current_thread().name
    with pytest.raises(ZeroDivisionError):
        await executor.run(lambda: 1 / 0)
    executor.close()


async def test_random_cancellations_lose_or_duplicate_nothing(add_compiled):
    import random

    rng = random.Random(7)
    requests = [add_compiled.create_infer_request() for _ in range(8)]
    delivered: dict[int, int] = {}
    cancelled = 0
    total = 1600  # a multiple of the 8 lanes

    async def lane(request: aioinfer.InferRequest, idents: range) -> None:
        nonlocal cancelled
        for ident in idents:
            roll = rng.random()
            with anyio.move_on_after(0 if roll < 0.2 else 1e-4 if roll < 0.4 else 60) as scope:
                results = await request.infer_async(_pair(float(ident)))
                assert results["y"][0, 0] == ident
                delivered[ident] = delivered.get(ident, 0) + 1
            if scope.cancelled_caught:
                cancelled += 1
            assert not request.busy

    async with anyio.create_task_group() as tg:
        step = total // len(requests)
        for k, request in enumerate(requests):
            tg.start_soon(lane, request, range(k * step, (k + 1) * step))
    assert set(delivered.values()) <= {1}
    assert len(delivered) + cancelled == total and cancelled > 0


async def test_cancel_stops_the_numpy_plan_at_its_next_step():
    # A run cancelled while a kernel runs stops before the next kernel, not after the plan.
    import dataclasses

    compiled = aioinfer.Core().compile_model(matmul_chain(), "NUMPY")
    plan = compiled.plan
    original = list(plan.steps)
    assert len(original) >= 4
    ran: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def recorded(step, hold: bool):
        def fn(*args):
            ran.append(step.node)
            if hold:
                entered.set()
                release.wait(30)
            return step.fn(*args)
        return dataclasses.replace(step, fn=fn)

    plan.steps[:] = [recorded(s, k == 1) for k, s in enumerate(original)]
    request = compiled.create_infer_request()
    x = np.random.default_rng(3).standard_normal((128, 128)).astype(np.float32)
    with anyio.move_on_after(30) as scope:
        async with anyio.create_task_group() as tg:
            async def cancel_when_inside() -> None:
                await anyio.to_thread.run_sync(entered.wait, 30)
                threading.Timer(0.05, release.set).start()
                tg.cancel_scope.cancel()

            tg.start_soon(cancel_when_inside)
            await request.infer_async(x)
    assert not scope.cancelled_caught, "the cancelled await did not return"
    assert ran == [s.node for s in original[:2]], ran  # nothing after the held kernel
    assert not request.busy and request._results is None
    plan.steps[:] = original
    results = await request.infer_async(x)
    np.testing.assert_allclose(results[0], matmul_chain_reference(x), rtol=1e-4, atol=1e-4)


def test_cancel_from_a_thread_stops_the_plan_and_raises_request_cancelled():
    import dataclasses

    from aioinfer.errors import RequestCancelledError

    compiled = aioinfer.Core().compile_model(matmul_chain(), "NUMPY")
    plan = compiled.plan
    ran: list[str] = []
    entered, release = threading.Event(), threading.Event()
    first = plan.steps[0]

    def hold(*args):
        ran.append(first.node)
        entered.set()
        release.wait(30)
        return first.fn(*args)

    plan.steps[0] = dataclasses.replace(first, fn=hold)
    later = plan.steps[1]
    plan.steps[1] = dataclasses.replace(later, fn=lambda *a: (ran.append(later.node),
                                                              later.fn(*a))[1])
    request = compiled.create_infer_request()
    request.start_async(np.ones((128, 128), np.float32))
    assert entered.wait(30)
    request.cancel()
    release.set()
    with pytest.raises(RequestCancelledError, match="cancelled before node"):
        request.wait()
    assert ran == [first.node] and not request.busy
