"""CallbackExecutor: a stage run by an engine that completes work on its own threads.

OpenVINO (``InferRequest.start_async`` + ``set_callback``) and onnxruntime
(``InferenceSession.run_async``) run an inference on their own thread pools and call back when
it is done. A stage whose function is an :class:`EngineCall` is *started* by
:meth:`CallbackExecutor.submit` (on the thread that made it ready: a host worker after the
input check) and ends when the engine's callback calls ``done(error)``, which resumes the run
on the engine's thread. The run's end then goes through the runtime's per-loop completion port
(:mod:`aioinfer.runtime.completion`), so completions are batched per loop wake-up: no thread of
ours waits while the engine computes, and there is no ``call_soon_threadsafe`` per request.

The input check, which the runtime hands to the first stage's executor, runs on the thread
that starts the run (the event loop's, for ``infer_async``) when it copies nothing: every
input an ndarray, C-contiguous and writeable, so that checking it and handing it to the engine
(which shares its memory) take microseconds and starting the engine does not wait. That saves
a thread hop per request, which on a busy host is a scheduler wake-up and the gap between one
inference and the next on an engine stream. Any other input (a list, a read-only or strided
array, inputs set with ``set_tensor``) is checked on a host worker, as for every device.

``infer()`` runs the same call synchronously (:meth:`EngineCall.__call__`, the engine's own
sync infer) on the calling thread. A plain stage (a function without ``start``) on this
executor runs on a host worker, so a request's extra stages need no special support.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

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

    def __init__(self, name: str) -> None:
        self.name = name
        # A lane of its own (no worker has it) makes the runtime hand this executor the input
        # check (index -1); nothing ever runs inline after a stage on it.
        self.lane: object = self

    def submit(self, run: PipelineRun, index: int) -> None:
        if index < 0:  # the input check
            if _copies_nothing(run.inputs):
                run.execute(-1, None)  # checks here, then submits stage 0 (lane None)
            else:
                HOST.submit(run, index)
            return
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


def _copies_nothing(inputs: Any, most: int = 16) -> bool:
    """Whether checking and binding ``inputs`` copies nothing (see the module docstring)."""
    if isinstance(inputs, np.ndarray):
        values: Any = (inputs,)
    elif isinstance(inputs, Mapping):
        values = inputs.values()
    elif isinstance(inputs, (list, tuple)):
        values = inputs
    else:
        return False
    if len(values) > most:
        return False
    for value in values:
        if not isinstance(value, np.ndarray):
            return False
        flags = value.flags
        if not (flags.c_contiguous and flags.writeable):
            return False
    return True
