"""The async runtime's own overhead: ``await infer_async`` on a one-op model.

Runs a [1,16] Add model with ``--tasks`` concurrent tasks, each awaiting inferences back to
back, for ``--seconds``; reports inferences per second and the event-loop lag seen by a task
that sleeps 1 ms in a loop (p50/p99/max extra delay). Compared on the same machine with:

- onnxruntime's ``InferenceSession.run_async`` bridged to asyncio (``call_soon_threadsafe``
  from its callback thread into a future);
- OpenVINO's ``AsyncInferQueue`` bridged the same way (only if ``openvino`` is installed).

``--cancel-stress N`` instead runs N ``infer_async`` calls with random cancellations and checks
that no result is lost or duplicated, no request is stuck and the thread count returns to its
baseline.

    python benchmarks/runtime_overhead.py [--seconds 3] [--tasks 64] [--cancel-stress 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.util
import random
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

import aioinfer

Infer = Callable[[list[np.ndarray]], Awaitable[object]]


def add_model() -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])], "add",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 16]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by older onnxruntime and OpenVINO releases
    return model


async def measure(make_worker: Callable[[int], Infer], tasks: int, seconds: float
                  ) -> tuple[float, list[float]]:
    """Inferences/second over ``seconds`` with ``tasks`` workers, and the loop lags."""
    inputs = [np.ones((1, 16), np.float32), np.ones((1, 16), np.float32)]
    count = 0
    stop = False
    lags: list[float] = []

    async def worker(k: int) -> None:
        nonlocal count
        infer = make_worker(k)
        while not stop:
            await infer(inputs)
            count += 1

    async def ticker() -> None:
        while not stop:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - start - 0.001)

    running = [asyncio.ensure_future(worker(k)) for k in range(tasks)]
    await asyncio.sleep(0.3)  # warm up
    count, lags[:] = 0, []
    tick = asyncio.ensure_future(ticker())
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    done, elapsed = count, time.perf_counter() - start
    stop = True
    await asyncio.gather(*running, tick)
    return done / elapsed, lags


def aioinfer_workers(model: onnx.ModelProto) -> Callable[[int], Infer]:
    compiled = aioinfer.Core().compile_model(model, "NUMPY")

    def make(_: int) -> Infer:
        return compiled.create_infer_request().infer_async

    return make


def ort_workers(model: onnx.ModelProto) -> Callable[[int], Infer]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])

    def make(_: int) -> Infer:
        async def infer(inputs: list[np.ndarray]) -> object:
            loop = asyncio.get_running_loop()
            future = loop.create_future()

            def done(outputs: object, _user: object, err: str) -> None:
                loop.call_soon_threadsafe(_settle, future, outputs, err)

            session.run_async(None, {"a": inputs[0], "b": inputs[1]}, done, None)
            return await future

        return infer

    return make


def openvino_workers(model: onnx.ModelProto, tasks: int) -> Callable[[int], Infer]:
    import openvino as ov

    compiled = ov.Core().compile_model(ov.Core().read_model(model.SerializeToString(), b""),
                                       "CPU")
    queue = ov.AsyncInferQueue(compiled, 0)
    loop_futures: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[object]]] = {}
    ids = iter(range(1 << 62))

    def callback(request: object, key: int) -> None:
        loop, future = loop_futures.pop(key)
        loop.call_soon_threadsafe(_settle, future, None, "")

    queue.set_callback(callback)

    def make(_: int) -> Infer:
        async def infer(inputs: list[np.ndarray]) -> object:
            loop = asyncio.get_running_loop()
            key = next(ids)
            future = loop.create_future()
            loop_futures[key] = (loop, future)
            queue.start_async({0: inputs[0], 1: inputs[1]}, key)  # blocks when all are busy
            return await future

        return infer

    return make


def _settle(future: asyncio.Future[object], value: object, err: str) -> None:
    if future.done():
        return
    if err:
        future.set_exception(RuntimeError(err))
    else:
        future.set_result(value)


def _report(name: str, rate: float, lags: list[float]) -> None:
    ms = np.asarray(lags) * 1e3 if lags else np.zeros(1)
    print(f"{name:34} {rate:10,.0f} inf/s   loop lag p50 {np.percentile(ms, 50):6.2f} ms  "
          f"p99 {np.percentile(ms, 99):6.2f} ms  max {ms.max():6.2f} ms")


Measured = tuple[float, list[float]]


def _run(loop_kind: str, coro_fn: Callable[[], Coroutine[Any, Any, Measured]]) -> Measured:
    if loop_kind == "uvloop":
        import uvloop

        return uvloop.run(coro_fn())
    return asyncio.run(coro_fn())


def overhead(seconds: float, tasks: int) -> None:
    model = add_model()
    loops = ["asyncio"] + (["uvloop"] if importlib.util.find_spec("uvloop") else [])
    print(f"[1,16] Add, {tasks} concurrent tasks, {seconds:g} s each")
    for loop_kind in loops:
        make = aioinfer_workers(model)
        _report(f"aioinfer infer_async ({loop_kind})",
                *_run(loop_kind, functools.partial(measure, make, tasks, seconds)))
    for loop_kind in loops:
        make = ort_workers(model)
        _report(f"onnxruntime run_async ({loop_kind})",
                *_run(loop_kind, functools.partial(measure, make, tasks, seconds)))
    if importlib.util.find_spec("openvino") is not None:
        make = openvino_workers(model, tasks)
        _report("openvino AsyncInferQueue (asyncio)",
                *_run("asyncio", lambda: measure(make, tasks, seconds)))
    else:
        print("openvino: not installed, skipped")


async def cancel_stress(total: int, tasks: int, seed: int = 0) -> None:
    """``total`` infer_async calls, about a third cancelled at a random moment."""
    compiled = aioinfer.Core().compile_model(add_model(), "NUMPY")
    requests = [compiled.create_infer_request() for _ in range(tasks)]
    rng = random.Random(seed)
    delivered: dict[int, int] = {}
    cancelled = 0
    next_id = 0

    async def one(request: aioinfer.InferRequest, ident: int, cancel_after: float | None
                  ) -> None:
        nonlocal cancelled
        value = np.full((1, 16), float(ident), np.float32)
        task = asyncio.ensure_future(request.infer_async([value, np.zeros_like(value)]))
        if cancel_after is not None:
            await asyncio.sleep(cancel_after)
            task.cancel()
        try:
            results = await task
        except asyncio.CancelledError:
            cancelled += 1
            assert not request.busy, "a cancelled request stayed busy"
            return
        got = int(results["y"][0, 0])
        assert got == ident, f"request {ident} got the result of {got}"
        delivered[ident] = delivered.get(ident, 0) + 1

    async def lane(request: aioinfer.InferRequest) -> None:
        nonlocal next_id
        while next_id < total:
            ident, next_id = next_id, next_id + 1
            roll = rng.random()
            cancel_after = None if roll > 0.33 else (0.0 if roll < 0.15 else rng.random() * 1e-4)
            await one(request, ident, cancel_after)

    baseline = threading.active_count()
    start = time.perf_counter()
    await asyncio.gather(*(lane(r) for r in requests))
    elapsed = time.perf_counter() - start
    assert all(n == 1 for n in delivered.values()), "a result was delivered twice"
    assert len(delivered) + cancelled == total, "a result was lost"
    assert not any(r.busy for r in requests), "a request is stuck"
    del requests, compiled
    deadline = time.monotonic() + 10
    while threading.active_count() > baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print(f"{total:,} requests in {elapsed:.1f} s: {len(delivered):,} results, "
          f"{cancelled:,} cancelled, none lost or duplicated; threads {threading.active_count()}"
          f" (baseline {baseline}, {len(threading.enumerate())} now)")
    assert threading.active_count() <= baseline, "worker threads did not exit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--cancel-stress", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if args.cancel_stress:
        asyncio.run(cancel_stress(args.cancel_stress, args.tasks))
    else:
        overhead(args.seconds, args.tasks)


if __name__ == "__main__":
    main()
