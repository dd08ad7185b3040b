"""CallbackExecutor: a stage run by an engine that completes work on its own threads.

OpenVINO (``InferRequest.start_async`` + ``set_callback``) and onnxruntime
(``InferenceSession.run_async``) run an inference on their own thread pools and call back when
it is done. A stage whose function is an :class:`EngineCall` is *started* by
:meth:`CallbackExecutor.submit` (on the thread that made it ready: a host worker after the
input check) and ends when the engine's callback calls ``done(error)``, which resumes the run
on the engine's thread. The run's end then goes through the runtime's per-loop completion port
(:mod:`aioinfer.runtime.completion`), so completions are batched per loop wake-up: no thread of
ours waits while the engine computes, and there is no ``call_soon_threadsafe`` per request.

The start is not done on the thread that starts the run (the event loop's, for
``infer_async``), although with inputs that need no copy it could be: measured on this
project's loaded 2-core host (squeezenet, two requests, THROUGHPUT), starting OpenVINO from
the loop thread gave 0.59x the throughput of starting it from the host worker that checks the
inputs, and no better latency (BERT-like, LATENCY: 1.06x); OpenVINO's own patterns differ as
much (its AsyncInferQueue fed from one thread: 66/s; callbacks and starter threads: 139/s).

``infer()`` runs the same call synchronously (:meth:`EngineCall.__call__`, the engine's own
sync infer) on the calling thread. A plain stage (a function without ``start``) on this
executor runs on a host worker, so a request's extra stages need no special support.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..runtime.executors import HOST

if TYPE_CHECKING:
    from ..runtime.pipeline import PipelineRun
    from ..runtime.stages import Stage

Done = Callable[[BaseException | None], None]


@runtime_checkable
class EngineCall(Protocol):
    """The function of an engine stage: callable (a synchronous inference), and startable."""

    def __call__(self) -> None:
        """Run the inference to its end on the calling thread."""

    def start(self, done: Done) -> None:
        """Start the inference without waiting; the engine calls ``done(None)`` (or
        ``done(error)``) on one of its threads when it has ended. Never blocks."""

    def cancel(self) -> None:
        """Ask a started inference to stop early (it still calls ``done``)."""


class CallbackExecutor:
    """The :class:`~aioinfer.runtime.stages.StageExecutor` of an engine plugin."""

    lane = None  # nothing runs inline after a stage: the engine's thread is not ours

    def __init__(self, name: str) -> None:
        self.name = name

    def submit(self, run: PipelineRun, index: int) -> None:
        work = run.graph.stages[index].fn
        if not isinstance(work, EngineCall):
            HOST.submit(run, index)  # a plain stage: a host worker runs it
            return
        reason = run.stop_reason()
        if reason is not None:
            run.resume(index, reason)
            return
        run.defer(index)
        try:
            work.start(lambda error: run.resume(index, error))
        except BaseException as exc:  # the engine refused the start: the stage fails
            run.resume(index, exc)
            return
        run.on_cancel(work.cancel)

    def run_inline(self, stage: Stage) -> None:
        stage.fn()

    def __repr__(self) -> str:
        return f"<CallbackExecutor {self.name!r}>"
