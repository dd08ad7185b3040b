"""OrtInferRequest: one inference of an ``onnxruntime.InferenceSession`` as one stage.

By default (``ORT_RUN_ASYNC`` off) the stage is an :class:`OrtRun` on the compiled model's
stream executor: the stream thread that checked the inputs calls ``run`` and computes as one of
onnxruntime's threads (one hop from the loop, the completion through the runtime's completion
port); a cancellation sets the run's ``RunOptions.terminate``.

With ``ORT_RUN_ASYNC`` the stage is an :class:`OrtCall` on a
:class:`~aioinfer.plugins.callbacks.CallbackExecutor`. ``infer_async()`` starts it with
``InferenceSession.run_async`` on the host worker that checked the inputs; onnxruntime runs
the inference on a thread of the session's pool and calls back there with the outputs (fresh
arrays) or an error message, which resumes the run. ``infer()`` makes the same call and waits
for it on the calling thread, so both paths compute on the same pool threads (a sync ``run``
would add the caller as one more compute thread). A cancellation sets the run's
``RunOptions.terminate``: onnxruntime stops between kernels and calls back with an error.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ...errors import InferenceError
from ...runtime.pipeline import current_run
from ..base import Stage, SyncInferRequest
from ..callbacks import Done
from ..engine_exit import GUARD

if TYPE_CHECKING:
    from .compiled_model import OrtCompiledModel


class OrtInferRequest(SyncInferRequest):
    """A device-level request of an ORT compiled model (the session is shared)."""

    compiled: OrtCompiledModel

    def __init__(self, compiled: OrtCompiledModel) -> None:
        super().__init__(compiled)
        self.call: OrtCall | OrtRun = OrtCall(self) if compiled.run_async else OrtRun(self)

    def stages(self) -> list[Stage]:
        return [Stage("infer", self.compiled.executor, self.call)]

    def feeds(self) -> dict[str, Any]:
        # An empty optional input (None) is left out, as onnxruntime expects.
        return {name: value for name, value in zip(self.compiled.input_names, self.inputs,
                                                   strict=True) if value is not None}

    def fail(self, error: str) -> InferenceError:
        compiled = self.compiled
        return InferenceError(f"{compiled.device}: onnxruntime inference of model "
                              f"{compiled.model.name!r} failed: {error.strip()}",
                              device=compiled.device, node=_node_of(error))


class OrtRun:
    """The stage of one request with stream threads: ``run`` on the calling thread."""

    __slots__ = ("request", "options")

    def __init__(self, request: OrtInferRequest) -> None:
        import onnxruntime as ort

        self.request = request
        self.options = ort.RunOptions()
        self.options.log_severity_level = 4

    def __call__(self) -> None:
        request = self.request
        options = self.options
        options.terminate = False
        run = current_run()
        if run is not None:
            run.on_cancel(self.cancel)
        compiled = request.compiled
        token = GUARD.enter(self._terminate)
        try:
            request.outputs = list(compiled.session.run(compiled.output_names, request.feeds(),
                                                        options))
        except Exception as exc:  # onnxruntime's own exception types
            raise request.fail(str(exc)) from exc
        finally:
            GUARD.leave(token)

    def cancel(self) -> None:
        self.options.terminate = True

    def _terminate(self, _timeout: float) -> bool:
        """At exit: ``run`` returns early with an error, and its thread leaves the guard."""
        self.options.terminate = True
        return False


class OrtCall:
    """The engine stage of one request (see :class:`~aioinfer.plugins.callbacks.EngineCall`)."""

    __slots__ = ("request", "options", "_done", "_token")

    def __init__(self, request: OrtInferRequest) -> None:
        import onnxruntime as ort

        self.request = request
        self.options = ort.RunOptions()
        self.options.log_severity_level = 4
        self._done: Done | None = None
        self._token = -1  # this start's entry in the exit guard

    def __call__(self) -> None:
        finished = threading.Event()
        failure: list[BaseException | None] = [None]

        def done(error: BaseException | None) -> None:
            failure[0] = error
            finished.set()

        self.start(done)
        finished.wait()
        if failure[0] is not None:
            raise failure[0]

    def start(self, done: Done) -> None:
        request = self.request
        self.options.terminate = False
        self._token = GUARD.enter(self._terminate)
        self._done = done
        try:
            with GUARD.calling():
                request.compiled.session.run_async(request.compiled.output_names,
                                                   request.feeds(), self._callback, None,
                                                   self.options)
        except BaseException:
            self._done = None
            GUARD.leave(self._token)
            raise

    def cancel(self) -> None:
        self.options.terminate = True

    def _terminate(self, _timeout: float) -> bool:
        """At exit: onnxruntime stops the run and calls back, which leaves the guard."""
        self.options.terminate = True
        return False

    def _callback(self, outputs: list[Any], _userdata: Any, error: str) -> None:
        token = self._token  # on a thread of onnxruntime's pool; done() may start again
        done, self._done = self._done, None
        request = self.request
        failure: BaseException | None = None
        try:
            if error:
                failure = request.fail(error)
            else:
                request.outputs = list(outputs)
            if done is not None:
                done(failure)
        finally:
            GUARD.leave(token)  # last: this thread is in Python until here


def _node_of(message: str) -> str | None:
    """The node an onnxruntime error names (``... node. Name:'rs' Status Message: ...``)."""
    marker = "Name:'"
    start = message.find(marker)
    if start < 0:
        return None
    end = message.find("'", start + len(marker))
    return message[start + len(marker):end] if end > 0 else None
