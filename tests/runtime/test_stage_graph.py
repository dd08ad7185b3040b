"""Stage graphs: independent stages of one request run at once, errors and cancellation wait
for every started stage, transfers wait on notifications without holding a worker."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import numpy as np
import pytest

import aioinfer
from aioinfer.errors import RequestError
from aioinfer.plugins.base import CompiledModel, Plugin, Stage, SyncInferRequest
from aioinfer.properties import Property, PropertySet
from aioinfer.runtime.executors import Executor
from aioinfer.runtime.stages import StageGraph
from aioinfer.runtime.streams import HOST_STREAM, HOST_TRANSFER, StreamExecutor, Transfer

from .models import add_model


class _DiamondRequest(SyncInferRequest):
    """split -> (left on A, right on B) -> join; left and right must meet at a barrier, so
    the request completes only if they run at the same time."""

    compiled: _DiamondModel

    def __init__(self, compiled: _DiamondModel) -> None:
        super().__init__(compiled)
        self.slots: dict[str, Any] = {}
        self.seen: list[str] = []

    def stages(self) -> list[Stage]:
        a, b = self.compiled.a, self.compiled.b
        return [
            Stage("split", a, self.split),
            Stage("left", a, self.left, after=("split",)),
            Stage("right", b, self.right, after=("split",)),
            Stage("join", a, self.join, after=("left", "right")),
        ]

    def split(self) -> None:
        self.slots["x"] = self.inputs[0]

    def left(self) -> None:
        self._meet("left")
        self.slots["l"] = self.slots["x"] * 2

    def right(self) -> None:
        self._meet("right")
        if self.compiled.fail_right:
            raise ValueError("right failed")
        self.slots["r"] = self.slots["x"] + 1

    def _meet(self, who: str) -> None:
        self.seen.append(threading.current_thread().name)
        if self.compiled.barrier is not None:
            self.compiled.barrier.wait(10)

    def join(self) -> None:
        self.outputs = [self.slots.pop("l") + self.slots.pop("r")]


class _DiamondModel(CompiledModel):
    def __init__(self, plugin: Plugin, model: aioinfer.Model) -> None:
        super().__init__(plugin, model, PropertySet(
            [Property("PERF_COUNT", "", default=False)], "DIAMOND"))
        self.a = Executor("diamond-a", workers=1)
        self.b = Executor("diamond-b", workers=1)
        self.barrier: threading.Barrier | None = threading.Barrier(2)
        self.fail_right = False

    def create_sync_request(self) -> _DiamondRequest:
        return _DiamondRequest(self)


class _DiamondPlugin(Plugin):
    name = "DIAMOND"

    def __init__(self, name: str = "DIAMOND") -> None:
        self.properties = PropertySet([], name)

    def compile_model(self, model: aioinfer.Model, config: Any) -> _DiamondModel:
        return _DiamondModel(self, model)

    def query_model(self, model: aioinfer.Model, config: Any) -> dict[str, str]:
        return {}


def _diamond() -> _DiamondModel:
    core = aioinfer.Core()
    core.register_plugin(_DiamondPlugin(), "DIAMOND")
    compiled = core.compile_model(add_model(), "DIAMOND")
    assert isinstance(compiled, _DiamondModel)
    return compiled


def test_stage_graph_resolves_dependencies():
    ex = Executor("g", workers=1)
    noop = lambda: None  # noqa: E731
    chain = StageGraph([Stage("a", ex, noop), Stage("b", ex, noop)])
    assert chain.linear and chain.roots == (0,) and chain.succs == ((1,), ())
    dag = StageGraph([Stage("a", ex, noop), Stage("b", ex, noop, after=()),
                      Stage("c", ex, noop, after=("a", "b"))])
    assert not dag.linear and dag.roots == (0, 1) and dag.preds[2] == (0, 1)
    assert set(dag.as_networkx().edges) == {("a", "c"), ("b", "c")}
    with pytest.raises(RequestError, match="topological"):
        StageGraph([Stage("a", ex, noop, after=("b",)), Stage("b", ex, noop)])
    with pytest.raises(RequestError, match="two stages"):
        StageGraph([Stage("a", ex, noop), Stage("a", ex, noop)])


@pytest.mark.anyio
async def test_independent_stages_of_one_request_run_concurrently():
    compiled = _diamond()
    request = compiled.create_infer_request()
    x = np.arange(16, dtype=np.float32).reshape(1, 16)
    with anyio.fail_after(20):
        for _ in range(3):
            result = await request.infer_async({"a": x, "b": x})
            np.testing.assert_array_equal(result[0], x * 2 + x + 1)
    sync = request._sync
    assert isinstance(sync, _DiamondRequest)
    assert any("diamond-a" in n for n in sync.seen) and any("diamond-b" in n for n in sync.seen)
    compiled.barrier = None  # inline, the branches run one after the other
    np.testing.assert_array_equal(request.infer({"a": x, "b": x})[0], x * 3 + 1)


@pytest.mark.anyio
async def test_a_failing_branch_fails_the_run_after_the_other_branch_ends():
    compiled = _diamond()
    compiled.fail_right = True
    request = compiled.create_infer_request()
    x = np.ones((1, 16), np.float32)
    with anyio.fail_after(20), pytest.raises(ValueError, match="right failed"):
        await request.infer_async({"a": x, "b": x})
    assert not request.busy
    compiled.fail_right = False
    with anyio.fail_after(20):
        np.testing.assert_array_equal((await request.infer_async({"a": x, "b": x}))[0], x * 4)


@pytest.mark.anyio
async def test_cancelling_a_dag_run_waits_for_its_running_stages():
    compiled = _diamond()
    compiled.barrier = threading.Barrier(3)  # left and right block until the test joins
    request = compiled.create_infer_request()
    x = np.ones((1, 16), np.float32)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            async def run() -> None:
                with pytest.raises(anyio.get_cancelled_exc_class()):
                    await request.infer_async({"a": x, "b": x})

            tg.start_soon(run)
            while compiled.barrier.n_waiting < 2:
                await anyio.sleep(0.005)
            tg.cancel_scope.cancel()
            assert request.busy  # both branches are still inside their stage
            threading.Thread(target=compiled.barrier.wait, args=(10,)).start()
    assert not request.busy and compiled.barrier.n_waiting == 0 and not compiled.barrier.broken
    compiled.barrier = None
    with anyio.fail_after(20):
        np.testing.assert_array_equal((await request.infer_async({"a": x, "b": x}))[0], x * 4)


class _GatedRequest(SyncInferRequest):
    """produce (worker) -> transfer (stream, waits on a notification the test fires)."""

    def __init__(self, compiled: CompiledModel, notification: Any) -> None:
        super().__init__(compiled)
        self.notification = notification
        self.slot: Any = None
        self.transfer = Transfer(lambda: [self.slot], self._write, HOST_TRANSFER, HOST_STREAM,
                                 "host")

    def _write(self, values: Any) -> None:
        self.outputs = list(values)

    def produce(self) -> None:
        self.slot = self.inputs[0] + self.inputs[1]
        self.transfer.source = self.notification

    def stages(self) -> list[Stage]:
        return [Stage("produce", self.compiled.executor, self.produce),  # type: ignore[attr-defined]
                Stage("transfer", StreamExecutor("test stream", HOST_STREAM), self.transfer)]


@pytest.mark.anyio
async def test_a_transfer_waits_for_its_notification_without_holding_a_worker(add_compiled):
    notification = HOST_STREAM.create_notification()
    request = aioinfer.InferRequest(add_compiled, _GatedRequest(add_compiled, notification))
    other = add_compiled.create_infer_request()
    a = np.full((1, 16), 2.0, np.float32)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            done = anyio.Event()

            async def gated() -> None:
                result = await request.infer_async({"a": a, "b": a})
                np.testing.assert_array_equal(result[0], a * 2)
                done.set()

            tg.start_soon(gated)
            while request._sync.slot is None:  # type: ignore[attr-defined]
                await anyio.sleep(0.005)
            # The only worker of the model's executor is free while the transfer waits.
            assert add_compiled.executor.workers == 1
            np.testing.assert_array_equal((await other.infer_async({"a": a, "b": a}))[0], a * 2)
            assert not done.is_set() and request.busy
            notification.activate()
            await done.wait()


@pytest.mark.anyio
async def test_cancel_while_a_transfer_waits_on_its_notification(add_compiled):
    notification = HOST_STREAM.create_notification()
    request = aioinfer.InferRequest(add_compiled, _GatedRequest(add_compiled, notification))
    a = np.ones((1, 16), np.float32)
    timer = threading.Timer(0.3, notification.activate)  # the producer's device work ends
    timer.start()
    with anyio.fail_after(20):
        with anyio.move_on_after(0.05) as scope:
            await request.infer_async({"a": a, "b": a})
        # The cancelled await returned only once the transfer had run and the run had ended.
        assert scope.cancelled_caught and notification.fired and not request.busy
        np.testing.assert_array_equal((await request.infer_async({"a": a, "b": a}))[0], a * 2)
