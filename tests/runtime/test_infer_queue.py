"""AsyncInferQueue, compiled.infer_async and compiled.stream on asyncio, uvloop and trio."""

from __future__ import annotations

import threading

import anyio
import numpy as np
import pytest

import aioinfer
from aioinfer import AsyncInferQueue
from aioinfer.errors import InputTypeError

from .models import LoopLag, add_model, gate_request, matmul_chain

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def add_compiled() -> aioinfer.CompiledModel:
    return aioinfer.Core().compile_model(add_model(), "NUMPY",
                                         {"PERFORMANCE_HINT": "THROUGHPUT"})


def _pair(k: float) -> list[np.ndarray]:
    return [np.full((1, 16), k, np.float32), np.zeros((1, 16), np.float32)]


async def test_results_in_submission_order_with_userdata(add_compiled):
    queue = AsyncInferQueue(add_compiled, jobs=4)
    assert len(queue) == 4
    for k in range(50):
        await queue.submit(_pair(float(k)), userdata=k)
    got = [(float(r["y"][0, 0]), r.userdata) async for r in queue]
    assert got == [(float(k), k) for k in range(50)]
    assert queue.in_flight == 0 and queue.is_ready()


async def test_jobs_zero_takes_optimal_number(add_compiled):
    optimal = add_compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
    assert len(AsyncInferQueue(add_compiled)) == optimal
    with pytest.raises(ValueError, match="jobs"):
        AsyncInferQueue(add_compiled, jobs=-1)


async def test_submit_waits_for_a_free_request_without_blocking_the_loop():
    compiled = aioinfer.Core().compile_model(matmul_chain(), "NUMPY")
    queue = AsyncInferQueue(compiled, jobs=2)
    gates = [gate_request(request) for request in queue._requests]
    x = np.ones((128, 128), np.float32)
    lag = LoopLag()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lag.run)
        await queue.submit(x)
        await queue.submit(x)
        assert not queue.is_ready()
        for gate in gates:  # both requests are held for 0.3 s; the third submit must wait
            threading.Timer(0.3, gate.set).start()
        for _ in range(6):
            await queue.submit(x)
            assert queue.in_flight <= 2
        await queue.wait_all()
        lag.stop()
    assert queue.in_flight == 0
    assert len(lag.delays) > 20
    assert lag.worst < 0.2, f"the loop stalled for {lag.worst * 1e3:.1f} ms"
    assert len([r async for r in queue]) == 8


async def test_error_reraised_with_the_input_that_caused_it(add_compiled):
    queue = AsyncInferQueue(add_compiled, jobs=2)
    bad = [np.zeros((1, 16), np.int32), np.zeros((1, 16), np.float32)]
    await queue.submit(_pair(1.0), userdata="good")
    await queue.submit(bad, userdata="bad")
    await queue.submit(_pair(3.0), userdata="after")
    with pytest.raises(InputTypeError) as info:
        await queue.wait_all()
    assert info.value.userdata == "bad" and info.value.inputs is bad
    await queue.wait_all()  # delivered once: not raised again
    # the iteration skips the submission whose error wait_all already raised
    assert [r.userdata async for r in queue] == ["good", "after"]


async def test_error_met_by_iteration_first_is_not_raised_by_wait_all(add_compiled):
    queue = AsyncInferQueue(add_compiled, jobs=2)
    await queue.submit(_pair(1.0), userdata="good")
    await queue.submit([np.zeros((1, 16), np.int32)] * 2, userdata="bad")
    await queue.submit(_pair(3.0), userdata="after")
    iterator = aiter(queue)
    assert (await anext(iterator)).userdata == "good"
    with pytest.raises(InputTypeError) as info:
        await anext(iterator)
    assert info.value.userdata == "bad"
    await queue.wait_all()  # already delivered to the iteration
    assert [r.userdata async for r in queue] == ["after"]


async def test_two_errors_each_raised_once_in_submission_order(add_compiled):
    queue = AsyncInferQueue(add_compiled, jobs=3)
    bad = [np.zeros((1, 16), np.int32)] * 2
    for tag in ("bad0", "good1", "bad2", "good3"):
        await queue.submit(bad if tag.startswith("bad") else _pair(1.0), userdata=tag)
    raised = []
    for _ in range(2):
        with pytest.raises(InputTypeError) as info:
            await queue.wait_all()
        raised.append(info.value.userdata)
    await queue.wait_all()
    assert raised == ["bad0", "bad2"]
    assert [r.userdata async for r in queue] == ["good1", "good3"]


async def test_ready_nowait_keeps_results_before_an_error(add_compiled):
    queue = AsyncInferQueue(add_compiled, jobs=3)
    await queue.submit(_pair(1.0), userdata="good")
    await queue.submit([np.zeros((1, 16), np.int32)] * 2, userdata="bad")
    await queue.submit(_pair(2.0), userdata="after")
    while queue.in_flight:
        await anyio.sleep(0.001)
    assert [r.userdata for r in queue.ready_nowait()] == ["good"]
    with pytest.raises(InputTypeError):
        queue.ready_nowait()
    assert [r.userdata for r in queue.ready_nowait()] == ["after"]


async def test_callback_gets_results_and_errors(add_compiled):
    queue = AsyncInferQueue(add_compiled, jobs=3)
    seen: list[tuple[object, object]] = []
    queue.set_callback(lambda outcome, userdata: seen.append((type(outcome).__name__, userdata)))
    for k in range(10):
        await queue.submit(_pair(float(k)), userdata=k)
    await queue.submit([np.zeros((1, 16), np.int8)] * 2, userdata="bad")
    await queue.wait_all()
    assert sorted(u for _, u in seen if u != "bad") == list(range(10))
    assert ("InputTypeError", "bad") in seen
    assert [r async for r in queue] == []  # a callback consumed them


async def test_compiled_infer_async_from_many_tasks(add_compiled):
    out: dict[int, float] = {}

    async def one(k: int) -> None:
        out[k] = float((await add_compiled.infer_async(_pair(float(k))))["y"][0, 0])

    async with anyio.create_task_group() as tg:
        for k in range(40):
            tg.start_soon(one, k)
    assert out == {k: float(k) for k in range(40)}


async def _source(n: int, produced: list[int] | None = None):
    for k in range(n):
        if produced is not None:
            produced.append(k)
        yield _pair(float(k))
        await anyio.sleep(0)


async def test_stream_ordered_and_unordered(add_compiled):
    ordered = [float(r["y"][0, 0]) async for r in add_compiled.stream(_source(30))]
    assert ordered == [float(k) for k in range(30)]
    unordered = [float(r["y"][0, 0]) async for r in
                 add_compiled.stream(_source(30), ordered=False, max_in_flight=3)]
    assert sorted(unordered) == [float(k) for k in range(30)]


async def test_stream_backpressure_bounds_what_is_pulled(add_compiled):
    produced: list[int] = []
    consumed = 0
    stream = add_compiled.stream(_source(100, produced), max_in_flight=2)
    async for _ in stream:
        consumed += 1
        # never more than max_in_flight pulled and not yet consumed
        assert len(produced) - consumed <= 2
        if consumed == 10:
            break
    await stream.aclose()
    assert len(produced) <= 12
