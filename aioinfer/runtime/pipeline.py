"""One asynchronous run of a request: its stage graph scheduled across executors.

This is the ``AsyncInferRequest`` of OpenVINO's design, generalised from a chain to a small
DAG (:mod:`.stages`). A worker first checks the inputs (never the loop thread), then the run
counts each stage's pending predecessors and submits a stage as soon as they are done. A
worker that finishes a stage runs the next ready stage inline while it uses the same executor
(lane), so a request on one device costs one hop to a worker and one completion, however many
stages it has. A stage may also finish later than its function returns (a sub-request, a
transfer waiting on a notification): its executor then calls :meth:`PipelineRun.resume` from
whichever thread completes it, and no thread waits meanwhile. Only the end of the run is
reported (``notify``).

Cancellation is cooperative: :meth:`PipelineRun.cancel` sets a flag that is checked before each
stage and runs the cancel hooks of deferred stages (a sub-request is cancelled in turn). A long
stage may also look at the flag between its own steps, through :func:`current_run` (the NUMPY
plan does, between kernels) and stop early with :class:`~aioinfer.errors.RequestCancelledError`.
After an error or a cancellation no new stage starts, and the run ends only when every started
stage has ended, so buffers, sub-requests and workers stay consistent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import RequestCancelledError
from .executors import ANY_LANE, HOST, worker_lane

if TYPE_CHECKING:
    from .request import InferRequest
    from .results import Results
    from .stages import Stage, StageGraph


_running = threading.local()
_hooks_lock = threading.Lock()  # cancel hooks are rare (deferred stages): one lock for all


def current_run() -> PipelineRun | None:
    """The async run whose stage the calling thread is executing (``None`` outside a stage of
    ``start_async``/``infer_async``, e.g. in ``infer()``).

    A stage with many steps may test ``run.cancelled`` between them and raise
    :class:`~aioinfer.errors.RequestCancelledError` to stop early; read it once per stage and
    keep the reference (the test is then one attribute load per step).
    """
    return getattr(_running, "run", None)


def _cancelled() -> RequestCancelledError:
    return RequestCancelledError("the infer request was cancelled")


class PipelineRun:
    """The state of one ``start_async``/``infer_async`` of an :class:`InferRequest`.

    Made with :func:`new_run`: a :class:`ChainRun` for a chain of stages (one stage runs at a
    time: nothing to count, the fast path), a :class:`GraphRun` otherwise.
    """

    __slots__ = (
        "request", "graph", "inputs", "cancelled", "error", "results", "notify", "timings",
        "event", "userdata", "_hooks", "_started",
    )

    def __init__(self, request: InferRequest, graph: StageGraph, inputs: Any) -> None:
        self.request = request
        self.graph = graph
        self.inputs = inputs
        self.cancelled = False
        self.error: BaseException | None = None
        self.results: Results | None = None
        self.notify: Callable[[], None] | None = None
        self.timings: list[dict[str, Any]] | None = None
        self.event: Any = None  # threading.Event for wait(), made by start_async only
        self.userdata: Any = None
        self._hooks: list[Callable[[], None]] | None = None
        self._started: dict[int, tuple[float, float]] | None = None  # deferred stages' clocks

    # -- driving ---------------------------------------------------------------------------------
    def start(self, notify: Callable[[], None]) -> None:
        """Hand the run to a worker (inputs are checked there); ``notify`` is called on a
        worker when the run has ended."""
        self.notify = notify
        first = self.graph.entry
        executor = first if first is not None else HOST
        if executor.lane is ANY_LANE:
            lane = worker_lane()
            if lane is not None:  # started by a stage of another run on a worker of ours
                outer = getattr(_running, "run", None)
                try:
                    self.execute(-1, lane)
                finally:
                    _running.run = outer  # that run's current_run() stays its own
                return
        try:
            # The prepare step needs a thread of ours: the first stage's worker, else HOST's.
            executor.submit(self, -1)
        except BaseException:
            self.notify = None
            raise

    def cancel(self) -> None:
        """Ask the run to stop before its next stage; its results will be dropped."""
        self.cancelled = True
        with _hooks_lock:
            hooks, self._hooks = self._hooks, None
        for hook in hooks or ():
            hook()

    def on_cancel(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` when the run is cancelled (at once if it already is): how a deferred
        stage passes a cancellation on to the work it waits for."""
        with _hooks_lock:
            if not self.cancelled:
                if self._hooks is None:
                    self._hooks = []
                self._hooks.append(hook)
                return
        hook()

    def execute(self, index: int, lane: object | None) -> None:
        """Run stage ``index`` (``-1``: the input check) on this thread, then every following
        ready stage whose executor has this ``lane``; submit the others."""
        raise NotImplementedError

    def stop_reason(self) -> BaseException | None:
        """Why a stage must not start now (the run was cancelled or another stage failed),
        or ``None``. Deferred executors check it before they start their work."""
        if self.cancelled:
            return _cancelled()
        return _Stopped() if self.error is not None else None

    def defer(self, index: int) -> None:
        """Note that stage ``index`` has started and will end with :meth:`resume` (its
        executor calls that from whichever thread completes the work)."""
        if self.timings is not None:
            if self._started is None:
                self._started = {}
            self._started[index] = (time.perf_counter(), time.thread_time())

    def resume(self, index: int, error: BaseException | None = None) -> None:
        """Stage ``index``, started by :meth:`defer`, has ended (on any thread)."""
        if self.timings is not None and self._started is not None:
            wall, cpu = self._started.pop(index, (time.perf_counter(), time.thread_time()))
            self.timings.append(_entry(self.graph.stages[index], "FAILED" if error else
                                       "EXECUTED", wall, cpu))
        self._resumed(index, error)

    def _resumed(self, index: int, error: BaseException | None) -> None:
        raise NotImplementedError

    # -- ending ------------------------------------------------------------------------------
    def _as_cancelled(self, exc: BaseException) -> BaseException:
        if self.cancelled and not isinstance(exc, RequestCancelledError):
            # A stage stopped by the cancellation may surface it wrapped (a plan run by a
            # kernel of another plan): report the cancellation, keep the chain.
            cancel = _cancelled()
            cancel.__cause__ = exc
            return cancel
        return exc

    def _finish(self) -> None:
        try:
            self.results = self.request._finish()
        except BaseException as exc:
            self.error = exc
        self.request._complete(self)


class ChainRun(PipelineRun):
    """A run of a chain: stages on one worker while they share its lane, then a hand-over."""

    __slots__ = ()

    def execute(self, index: int, lane: object | None) -> None:
        stages = self.graph.stages
        _running.run = self
        try:
            if index < 0:
                if self.cancelled:
                    raise _cancelled()
                self.request._prepare(self.inputs)
                self.inputs = None
                index = 0
                first = stages[0].executor.lane
                if lane is None or (first is not lane and first is not ANY_LANE):
                    _running.run = None
                    stages[0].executor.submit(self, 0)
                    return
            while True:
                if self.cancelled:
                    raise _cancelled()
                if self.timings is None:
                    stages[index].fn()
                else:
                    self.timings.append(_timed(stages[index]))
                index += 1
                if index == len(stages):
                    self.results = self.request._finish()
                    break
                following = stages[index].executor
                if lane is None or (following.lane is not lane and following.lane is not ANY_LANE):
                    _running.run = None
                    following.submit(self, index)
                    return
        except BaseException as exc:  # delivered to whoever waits for the run
            self.error = self._as_cancelled(exc)
        _running.run = None
        self.request._complete(self)

    def _resumed(self, index: int, error: BaseException | None) -> None:
        if error is None:
            if index + 1 == len(self.graph.stages):
                self._finish()
                return
            try:
                self.graph.stages[index + 1].executor.submit(self, index + 1)
                return
            except BaseException as exc:  # a closed executor
                error = exc
        self.error = self._as_cancelled(error)
        self.request._complete(self)


class GraphRun(PipelineRun):
    """A run of a stage DAG: pending predecessors are counted and ready stages submitted;
    after an error nothing new starts and the run ends with the last running stage."""

    __slots__ = ("_pending", "_done", "_active", "_lock")

    def __init__(self, request: InferRequest, graph: StageGraph, inputs: Any) -> None:
        super().__init__(request, graph, inputs)
        self._pending = list(graph.npred)
        self._done = 0
        self._active = 1  # stages started and not ended; the input check counts as one
        self._lock = threading.Lock()

    def execute(self, index: int, lane: object | None) -> None:
        stages = self.graph.stages
        _running.run = self
        while True:
            try:
                if self.cancelled or self.error is not None:
                    raise _cancelled() if self.cancelled else _Stopped()
                if index < 0:
                    self.request._prepare(self.inputs)
                    self.inputs = None
                elif self.timings is None:
                    stages[index].fn()
                else:
                    self.timings.append(_timed(stages[index]))
            except BaseException as exc:  # delivered to whoever waits for the run
                _running.run = None
                self._ended(index, exc)
                return
            index = self._advance(index, lane)
            if index < 0:
                _running.run = None
                return

    def _resumed(self, index: int, error: BaseException | None) -> None:
        if error is not None:
            self._ended(index, error)
            return
        following = self._advance(index, None)
        assert following < 0  # lane None: nothing runs inline

    def _advance(self, index: int, lane: object | None) -> int:
        """Stage ``index`` ended well: count it, start what became ready. Returns the stage
        to run inline on ``lane`` next, or -1."""
        graph = self.graph
        with self._lock:
            self._active -= 1
            if index < 0:
                ready = list(graph.roots)
            else:
                self._done += 1
                ready = []
                pending = self._pending
                for s in graph.succs[index]:
                    pending[s] -= 1
                    if not pending[s]:
                        ready.append(s)
            if self.error is not None:
                ready = []
            self._active += len(ready)
            finished = self._done == len(graph.stages)
            idle = self._active == 0
        if finished:
            self._finish()
            return -1
        if not ready:
            if idle:  # an error was recorded meanwhile and this was the last stage running
                self.request._complete(self)
            return -1
        inline = -1
        stages = graph.stages
        for s in ready:
            executor = stages[s].executor
            if inline < 0 and lane is not None and (executor.lane is lane
                                                     or executor.lane is ANY_LANE):
                inline = s
                continue
            try:
                executor.submit(self, s)
            except BaseException as exc:  # a closed executor: that stage fails
                self._ended(s, exc)
        return inline

    def _ended(self, index: int, exc: BaseException) -> None:
        """Stage ``index`` failed (or was not started because the run is stopping)."""
        exc = self._as_cancelled(exc)
        with self._lock:
            if self.error is None and not isinstance(exc, _Stopped):
                self.error = exc
            self._active -= 1
            idle = self._active == 0
        if idle:
            self.request._complete(self)


def new_run(request: InferRequest, graph: StageGraph, inputs: Any) -> PipelineRun:
    """The run of one inference of ``request`` over its stage ``graph``."""
    return (ChainRun if graph.linear else GraphRun)(request, graph, inputs)


class _Stopped(Exception):
    """Internal: a stage not started because another stage of the run failed."""


def _timed(stage: Stage, work: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Run ``work`` (default: the stage's function) and return the stage's profiling entry."""
    wall, cpu = time.perf_counter(), time.thread_time()
    status = "EXECUTED"
    try:
        (work or stage.fn)()
    except BaseException:
        status = "FAILED"
        raise
    finally:
        entry = _entry(stage, status, wall, cpu)
    return entry


def timed_inline(stage: Stage) -> dict[str, Any]:
    """Run ``stage`` inline on its executor (``infer()``) and return its profiling entry."""
    return _timed(stage, lambda: stage.executor.run_inline(stage))


def _entry(stage: Stage, status: str, wall: float, cpu: float) -> dict[str, Any]:
    return {
        "node_name": stage.name,
        "node_type": "Stage",
        "status": status,
        "real_time": time.perf_counter() - wall,
        "cpu_time": time.thread_time() - cpu,
        "exec_type": stage.executor.name,
    }
