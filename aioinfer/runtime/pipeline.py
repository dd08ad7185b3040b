"""One asynchronous run of a request: its stages chained across executors.

This is the ``AsyncInferRequest`` of OpenVINO's design: the run is only the request's list of
``(executor, stage)`` pairs. A worker of the first stage's executor checks the inputs and runs
the first stage; as long as the next stage uses the same executor it runs inline, otherwise the
run is handed to the next executor. Only the end of the run is reported (``notify``), so a
request costs one hop to a worker and one completion, however many stages it has.

Cancellation is cooperative: :meth:`PipelineRun.cancel` sets a flag that is checked before each
stage. A long stage may also look at it between its own steps, through :func:`current_run`
(the NUMPY plan does, between kernels) and stop early with
:class:`~aioinfer.errors.RequestCancelledError`; otherwise the running stage finishes. Either
way the stage ends on its own worker, so buffers and workers stay consistent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import RequestCancelledError

if TYPE_CHECKING:
    from ..plugins.base import Stage
    from .executors import _Pool
    from .request import InferRequest
    from .results import Results


_running = threading.local()


def current_run() -> PipelineRun | None:
    """The async run whose stage the calling thread is executing (``None`` outside a stage of
    ``start_async``/``infer_async``, e.g. in ``infer()``).

    A stage with many steps may test ``run.cancelled`` between them and raise
    :class:`~aioinfer.errors.RequestCancelledError` to stop early; read it once per stage and
    keep the reference (the test is then one attribute load per step).
    """
    return getattr(_running, "run", None)


class PipelineRun:
    """The state of one ``start_async``/``infer_async`` of an :class:`InferRequest`."""

    __slots__ = (
        "request", "stages", "inputs", "index", "cancelled", "error", "results", "notify",
        "timings", "event", "userdata",
    )

    def __init__(self, request: InferRequest, stages: Sequence[Stage], inputs: Any) -> None:
        self.request = request
        self.stages = stages
        self.inputs = inputs
        self.index = -1  # -1: inputs not checked yet
        self.cancelled = False
        self.error: BaseException | None = None
        self.results: Results | None = None
        self.notify: Callable[[], None] | None = None
        self.timings: list[dict[str, Any]] | None = None
        self.event: Any = None  # threading.Event for wait(), made by start_async only
        self.userdata: Any = None

    def start(self, notify: Callable[[], None]) -> None:
        """Hand the run to its first executor; ``notify`` is called (on a worker) at the end."""
        self.notify = notify
        try:
            self.stages[0].executor._pool.submit(self)
        except BaseException:
            self.notify = None
            raise

    def cancel(self) -> None:
        """Ask the run to stop before its next stage; its results will be dropped."""
        self.cancelled = True

    def advance(self, pool: _Pool) -> None:
        """Run stages on this worker while they belong to ``pool``; then hand over or finish."""
        request = self.request
        stages = self.stages
        _running.run = self
        try:
            if self.index < 0:
                if self.cancelled:
                    raise RequestCancelledError("the infer request was cancelled")
                request._prepare(self.inputs)
                self.inputs = None
                self.index = 0
            while True:
                if self.cancelled:
                    raise RequestCancelledError("the infer request was cancelled")
                stage = stages[self.index]
                if self.timings is None:
                    stage.fn()
                else:
                    self.timings.append(_timed(stage))
                self.index += 1
                if self.index == len(stages):
                    self.results = request._finish()
                    break
                following = stages[self.index].executor._pool
                if following is not pool:
                    _running.run = None
                    following.submit(self)
                    return
        except BaseException as exc:  # delivered to whoever waits for the run
            if self.cancelled and not isinstance(exc, RequestCancelledError):
                # A stage stopped by the cancellation may surface it wrapped (a plan run by a
                # kernel of another plan): report the cancellation, keep the chain.
                cancel = RequestCancelledError("the infer request was cancelled")
                cancel.__cause__ = exc
                exc = cancel
            self.error = exc
        _running.run = None
        request._complete(self)


def _timed(stage: Stage) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.thread_time()
    status = "EXECUTED"
    try:
        stage.fn()
    except BaseException:
        status = "FAILED"
        raise
    finally:
        entry = {
            "node_name": stage.name,
            "node_type": "Stage",
            "status": status,
            "real_time": time.perf_counter() - wall,
            "cpu_time": time.thread_time() - cpu,
            "exec_type": stage.executor.name,
        }
    return entry
