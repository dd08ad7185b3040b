"""RequestExecutor: a stage that is an infer request of another compiled model.

This is OpenVINO HETERO's ``RequestExecutor``: the stage starts the sub-request without
waiting for it, and the run resumes from the sub-request's completion, on the worker that
finished it. No thread is held while the sub-request runs on its own device's executors, so
with several requests in flight the subgraphs of different requests overlap across devices.
A cancellation of the run is passed on to the sub-request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pipeline import PipelineRun
    from .request import InferRequest
    from .stages import Stage


class RequestExecutor:
    """Drives ``request`` (whose inputs the stage's function sets) as one stage.

    ``on_done`` runs after a successful sub-request, before the run goes on (a HETERO
    subgraph activates its stream's notification there).
    """

    lane = None

    def __init__(self, name: str, request: InferRequest,
                 on_done: Callable[[], None] | None = None) -> None:
        self.name = name
        self.request = request
        self.on_done = on_done

    def submit(self, run: PipelineRun, index: int) -> None:
        reason = run.stop_reason()
        if reason is not None:
            run.resume(index, reason)
            return
        run.defer(index)
        try:
            run.graph.stages[index].fn()  # hands the inputs over: no kernel runs here
            self.request._start_child(lambda child: self._ended(run, index, child))
        except BaseException as exc:
            run.resume(index, exc)
            return
        run.on_cancel(self.request.cancel)

    def _ended(self, run: PipelineRun, index: int, child: PipelineRun) -> None:
        error = child.error
        if error is None and self.on_done is not None:
            try:
                self.on_done()
            except BaseException as exc:
                error = exc
        run.resume(index, error)

    def run_inline(self, stage: Stage) -> None:
        stage.fn()
        self.request.infer()
        if self.on_done is not None:
            self.on_done()

    def __repr__(self) -> str:
        return f"<RequestExecutor {self.name!r} {self.request!r}>"
