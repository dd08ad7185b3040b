"""Faults while running: a custom op raising mid-plan (alone and inside one HETERO
subgraph), a plugin failing in compile, cancellation at random points of a HETERO request,
the compiled model or Core released and the executors shut down with requests in flight.

Each time the error reaches the awaiting caller, the request is reusable at once (its next
inference is right), and the thread count returns to what it was.
"""

from __future__ import annotations

import asyncio
import gc
import random
import threading
import time
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper

import aioinfer
from aioinfer.errors import (
    AioInferError,
    InferenceError,
    RequestCancelledError,
    RequestError,
    SubgraphCompileError,
)
from aioinfer.plugins.numpy import NumpyPlugin
from aioinfer.runtime.executors import Executor

DOMAIN = "com.example.faults"


class Fragile(aioinfer.Op):
    """Identity that raises when the first element is negative: a fault decided by data."""

    domain = DOMAIN

    def infer_shape(self, inputs: Any) -> Any:
        return [inputs[0]]

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        if x.reshape(-1)[0] < 0:
            raise ZeroDivisionError("fragile: negative input")
        return x.copy()


def _chain(n: int = 6, custom: bool = True) -> Any:
    """x [1, 64] -> Add 1 -> (Fragile) -> Sigmoid, Neg, ... alternating: a chain of nodes."""
    nodes = [helper.make_node("Add", ["x", "one"], ["v0"], name="n0")]
    last = "v0"
    if custom:
        nodes.append(helper.make_node("Fragile", [last], ["f"], name="fragile", domain=DOMAIN))
        last = "f"
    for k in range(1, n):
        op = ("Sigmoid", "Neg", "Abs", "Sqrt")[k % 4]
        nodes.append(helper.make_node(op, [last], [f"v{k}"], name=f"n{k}"))
        last = f"v{k}"
    nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(DOMAIN, 1)] if custom else [])
    return helper.make_model(graph, opset_imports=opsets)


def _reference(x: np.ndarray, n: int = 6) -> np.ndarray:
    v = x + 1
    for k in range(1, n):
        v = [lambda a: 1 / (1 + np.exp(-a)), np.negative, np.abs, np.sqrt][k % 4](v)
    return v


GOOD = np.linspace(0.1, 1.0, 64, dtype=np.float32)[None]
BAD = -np.ones((1, 64), np.float32) * 5


def _causes(exc: BaseException | None) -> list[BaseException]:
    chain = []
    while exc is not None and len(chain) < 20:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _settled(baseline: int, timeout: float = 10.0) -> int:
    """The thread count once idle workers have exited (they do after their idle timeout)."""
    deadline = time.monotonic() + timeout
    while threading.active_count() > baseline and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.1)
    return threading.active_count()


def _core() -> aioinfer.Core:
    core = aioinfer.Core()
    core.add_extension(Fragile)
    return core


AFFINITY = {"n0": "NUMPY", "fragile": "TEMPLATE", "n1": "NUMPY", "n2": "TEMPLATE",
            "n3": "NUMPY", "n4": "TEMPLATE", "n5": "NUMPY", "out": "TEMPLATE"}
DEVICES = [("NUMPY", {}), ("TEMPLATE", {}), ("HETERO:NUMPY,TEMPLATE", {"AFFINITY": AFFINITY})]


@pytest.mark.parametrize(("device", "config"), DEVICES, ids=[d for d, _ in DEVICES])
@pytest.mark.asyncio
async def test_a_custom_op_raising_mid_plan_reaches_the_caller_and_the_request_is_reusable(
        device: str, config: dict[str, Any]) -> None:
    baseline = threading.active_count()
    compiled = _core().compile_model(_chain(), device, config)
    request = compiled.create_infer_request()
    for _ in range(3):
        with pytest.raises(InferenceError) as info:
            await request.infer_async({"x": BAD})
        assert info.value.node == "fragile" and "negative input" in str(info.value)
        assert any(isinstance(e, ZeroDivisionError) for e in _causes(info.value))
        got = await request.infer_async({"x": GOOD})
        np.testing.assert_allclose(got["y"], _reference(GOOD), rtol=1e-6)
        with pytest.raises(InferenceError):
            request.infer({"x": BAD})  # the synchronous path too
        np.testing.assert_allclose(request.infer({"x": GOOD})["y"], _reference(GOOD), rtol=1e-6)
    compiled.release()
    del compiled, request
    assert _settled(baseline) <= baseline


@pytest.mark.asyncio
async def test_many_requests_failing_and_succeeding_at_once_each_get_their_own_outcome() -> None:
    compiled = _core().compile_model(_chain(), "HETERO:NUMPY,TEMPLATE", {"AFFINITY": AFFINITY})
    outcomes: dict[int, Any] = {}

    async def one(k: int) -> None:
        x = BAD if k % 3 == 0 else GOOD * (1 + k / 100)
        try:
            outcomes[k] = (await compiled.infer_async({"x": x}))["y"]
        except InferenceError as exc:
            outcomes[k] = exc

    await asyncio.gather(*(one(k) for k in range(60)))
    for k, got in outcomes.items():
        if k % 3 == 0:
            assert isinstance(got, InferenceError) and got.node == "fragile"
        else:
            np.testing.assert_allclose(got, _reference(GOOD * (1 + k / 100)), rtol=1e-5)
    compiled.release()


class _BrokenCompile(NumpyPlugin):
    """A plugin whose compile fails with a plain exception (a third-party bug)."""

    def compile_model(self, model: Any, config: Any) -> Any:
        raise RuntimeError("broken compile on purpose")


def test_a_plugin_failing_in_compile_of_one_hetero_subgraph_is_named_and_nothing_leaks() -> None:
    baseline = threading.active_count()
    core = _core()
    core.register_plugin(_BrokenCompile("BROKEN"), "BROKEN")
    affinity = {**AFFINITY, "n3": "BROKEN", "fragile": "NUMPY"}
    for _ in range(3):
        with pytest.raises(SubgraphCompileError) as info:
            core.compile_model(_chain(), "HETERO:NUMPY,TEMPLATE,BROKEN", {"AFFINITY": affinity})
        assert info.value.device == "BROKEN"
        assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(RuntimeError, match="broken compile"):
        core.compile_model(_chain(custom=False), "BROKEN")
    compiled = core.compile_model(_chain(), "HETERO:NUMPY,TEMPLATE", {"AFFINITY": AFFINITY})
    np.testing.assert_allclose(compiled.create_infer_request().infer({"x": GOOD})["y"],
                               _reference(GOOD), rtol=1e-6)
    compiled.release()
    del compiled, core
    assert _settled(baseline) <= baseline


@pytest.mark.asyncio
async def test_cancellation_at_random_points_of_a_hetero_request_leaves_it_reusable() -> None:
    """Cancelled after a random delay (before the first stage, inside a subgraph, in a
    transfer, after the last): the awaiting task sees the cancellation, and the same request's
    next inference is right."""
    baseline = threading.active_count()
    compiled = _core().compile_model(_chain(8), "HETERO:NUMPY,TEMPLATE",
                                     {"AFFINITY": {**AFFINITY, "n6": "TEMPLATE",
                                                   "n7": "NUMPY"}})
    request = compiled.create_infer_request()
    start = time.perf_counter()
    request.infer({"x": GOOD})
    one_run = time.perf_counter() - start
    rng = random.Random(16)
    cancelled = completed = inside = 0
    for k in range(120):
        task = asyncio.ensure_future(request.infer_async({"x": GOOD * (1 + k / 1000)}))
        if k % 3:  # else cancelled before its first stage runs
            await asyncio.sleep(rng.uniform(0, 1.2 * one_run))
        task.cancel()
        try:
            got = await task
            completed += 1
            np.testing.assert_allclose(got["y"], _reference(GOOD * (1 + k / 1000), 8),
                                       rtol=1e-5)
        except asyncio.CancelledError:
            cancelled += 1
            inside += bool(k % 3)
        assert not request.busy
        x = GOOD * (2 + k / 1000)
        np.testing.assert_allclose((await request.infer_async({"x": x}))["y"],
                                   _reference(x, 8), rtol=1e-5)
    assert cancelled > 40 and inside > 5  # the points did land before and inside runs
    compiled.release()
    del compiled, request
    assert _settled(baseline) <= baseline


@pytest.mark.parametrize("device", ["NUMPY", "HETERO:NUMPY,TEMPLATE"])
@pytest.mark.asyncio
async def test_release_with_requests_in_flight_ends_every_await(device: str) -> None:
    """``release()`` while 48 requests run: each awaiting caller gets its right result (the run
    had started) or a RequestError (refused); none waits for ever; then threads go back."""
    baseline = threading.active_count()
    core = _core()
    config = {"AFFINITY": AFFINITY} if device.startswith("HETERO") else {}
    compiled = core.compile_model(_chain(), device, config)

    async def one(k: int) -> Any:
        x = GOOD * (1 + k / 100)
        for _ in range(20):
            try:
                got = await compiled.infer_async({"x": x})
            except RequestError as exc:
                return exc
            np.testing.assert_allclose(got["y"], _reference(x), rtol=1e-5)
        return None

    tasks = [asyncio.ensure_future(one(k)) for k in range(48)]
    await asyncio.sleep(0.05)
    closer = threading.Thread(target=compiled.release)  # from another thread, as at shutdown
    closer.start()
    while closer.is_alive():
        await asyncio.sleep(0.01)
    del core
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    assert any(isinstance(r, RequestError) for r in results)
    with pytest.raises(RequestError):
        await compiled.infer_async({"x": GOOD})
    assert _settled(baseline) <= baseline, [t.name for t in threading.enumerate()]


@pytest.mark.asyncio
async def test_dropping_the_core_and_model_with_requests_in_flight_loses_nothing() -> None:
    """Only the requests hold the model: every in-flight result still arrives, right."""
    baseline = threading.active_count()
    compiled = _core().compile_model(_chain(), "HETERO:NUMPY,TEMPLATE", {"AFFINITY": AFFINITY})
    requests = [compiled.create_infer_request() for _ in range(16)]
    del compiled
    gc.collect()
    xs = [GOOD * (1 + k / 10) for k in range(16)]
    got = await asyncio.wait_for(asyncio.gather(
        *(r.infer_async({"x": x}) for r, x in zip(requests, xs, strict=True))), timeout=60)
    for result, x in zip(got, xs, strict=True):
        np.testing.assert_allclose(result["y"], _reference(x), rtol=1e-5)
    del requests, got
    assert _settled(baseline) <= baseline


@pytest.mark.asyncio
async def test_an_executor_shut_down_under_load_finishes_queued_work_and_refuses_new() -> None:
    baseline = threading.active_count()
    executor = Executor("faults", workers=2, idle_timeout=0.5)
    done: list[int] = []

    def work(k: int) -> int:
        time.sleep(0.002)
        done.append(k)
        return k

    async def one(k: int) -> Any:
        try:
            return await executor.run(lambda: work(k))
        except RequestError as exc:
            return exc

    tasks = [asyncio.ensure_future(one(k)) for k in range(200)]
    await asyncio.sleep(0.02)
    executor.close(timeout=None)
    results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    served = [r for r in results if not isinstance(r, AioInferError)]
    assert sorted(served) == sorted(done)  # each queued task ran once and its caller got it
    assert all(isinstance(r, RequestError) for r in results if r not in served)
    with pytest.raises(RequestError):
        await executor.run(lambda: 1)
    assert _settled(baseline) <= baseline


def test_an_uncancellable_wait_does_not_exist_on_template_loops() -> None:
    """A Loop of 2**62 iterations (a fuzzed trip count) stops when its request is cancelled,
    on both devices, and the request is reusable."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]),
         helper.make_node("Add", ["acc", "one"], ["acc_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1])])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "", "x"], ["y"], body=body, name="forever")],
        "forever", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
                    helper.make_tensor_value_info("trips", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for device in ("NUMPY", "TEMPLATE"):
        request = aioinfer.Core().compile_model(model, device).create_infer_request()
        x = np.zeros(1, np.float32)
        request.start_async({"x": x, "trips": np.array(2**62)})
        assert not request.wait_for(0.3)
        request.cancel()
        assert request.wait_for(10.0), device
        with pytest.raises(RequestCancelledError):
            request.wait()
        got = request.infer({"x": x, "trips": np.array(5)})
        np.testing.assert_array_equal(got["y"], [5.0])


@pytest.mark.anyio
async def test_cancel_scopes_at_random_points_on_every_loop() -> None:
    """The same on asyncio, uvloop and trio: a cancel scope ending at a random point of a
    HETERO run; the request is never left busy and its next result is right."""
    import anyio

    compiled = _core().compile_model(_chain(), "HETERO:NUMPY,TEMPLATE", {"AFFINITY": AFFINITY})
    request = compiled.create_infer_request()
    start = time.perf_counter()
    request.infer({"x": GOOD})
    one_run = time.perf_counter() - start
    rng = random.Random(7)
    cancelled = 0
    for k in range(40):
        with anyio.move_on_after(rng.uniform(0, 1.2 * one_run)) as scope:
            await request.infer_async({"x": GOOD})
        cancelled += scope.cancelled_caught
        assert not request.busy
        x = GOOD * (1 + k / 100)
        np.testing.assert_allclose((await request.infer_async({"x": x}))["y"], _reference(x),
                                   rtol=1e-5)
    assert cancelled > 0
    compiled.release()
