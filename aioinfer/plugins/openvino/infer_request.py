"""OpenVinoInferRequest: one ``openvino.InferRequest`` as a single engine stage.

The request's only stage is an :class:`OvCall` on the compiled model's
:class:`~aioinfer.plugins.callbacks.CallbackExecutor`:

- ``infer()`` calls it inline: the inputs are bound (as OpenVINO tensors sharing the arrays'
  memory), OpenVINO's sync ``infer`` runs, the outputs are copied out;
- ``infer_async()`` starts it on the host worker that checked the inputs: the inputs are bound
  and ``start_async`` hands the inference to OpenVINO's streams. OpenVINO's callback, on its
  own thread, copies the outputs and resumes the run, whose completion reaches the awaiting
  task through the runtime's batched completion port. A failure, which OpenVINO reports to no
  callback, is found by the plugin's :class:`~.watch.FailureWatch`.

Inputs are shared with OpenVINO, not copied, when they are C-contiguous and writeable (a
read-only or strided array is copied once into a C-contiguous one, since OpenVINO's tensors
share only such memory). An OpenVINO tensor does not keep the array it shares alive, so the
request holds the bound arrays until the next bind. Outputs are copied because OpenVINO reuses
a request's output buffers on its next inference.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import InferenceError
from ...runtime.executors import nice_engine_threads
from ..base import Stage, SyncInferRequest
from ..callbacks import Done
from ..engine_exit import GUARD

if TYPE_CHECKING:
    from .compiled_model import OpenVinoCompiledModel


class OpenVinoInferRequest(SyncInferRequest):
    """A device-level request over one ``openvino.InferRequest``."""

    compiled: OpenVinoCompiledModel

    def __init__(self, compiled: OpenVinoCompiledModel) -> None:
        super().__init__(compiled)
        self.engine = compiled.engine.create_infer_request()
        self.call = OvCall(self)
        self._bound: list[np.ndarray] = []  # the memory OpenVINO reads (see the module doc)

    def stages(self) -> list[Stage]:
        return [Stage("infer", self.compiled.executor, self.call)]

    def bind_inputs(self) -> None:
        import openvino as ov

        engine = self.engine
        bound = [shareable(value) for value in self.inputs]
        for index, array in zip(self.compiled.input_order, bound, strict=True):
            engine.set_input_tensor(index, ov.Tensor(array, shared_memory=True))
        self._bound = bound

    def read_outputs(self) -> None:
        engine = self.engine
        self.outputs = [np.array(engine.get_output_tensor(i).data)
                        for i in self.compiled.output_order]

    def profiling_info(self) -> list[dict[str, Any]]:
        """OpenVINO's per-op timings of the last inference (with PERF_COUNT on)."""
        if not self.compiled.profiling:
            return []
        return [{"node_name": p.node_name, "node_type": p.node_type, "exec_type": p.exec_type,
                 "status": str(p.status).rsplit(".", 1)[-1],
                 "real_time": p.real_time.total_seconds(),
                 "cpu_time": p.cpu_time.total_seconds()}
                for p in self.engine.profiling_info]


def shareable(value: Any) -> np.ndarray:
    """``value`` as an array OpenVINO can share: itself when C-contiguous and writeable
    (OpenVINO refuses read-only memory), else a C-contiguous copy."""
    array = np.asarray(value)
    if array.flags.c_contiguous and array.flags.writeable:
        return array
    return np.array(array, order="C", copy=True)


class OvCall:
    """The engine stage of one request (see :class:`~aioinfer.plugins.callbacks.EngineCall`)."""

    __slots__ = ("request", "_done", "_token", "__weakref__")

    def __init__(self, request: OpenVinoInferRequest) -> None:
        self.request = request
        self._done: Done | None = None
        self._token = -1  # this start's entry in the exit guard
        # The engine holds its callback's arguments where Python's collector cannot see them:
        # a weak reference back, so that a dropped request is collected.
        request.engine.set_callback(_on_done, weakref.ref(self))

    def __call__(self) -> None:
        request = self.request
        request.bind_inputs()
        token = GUARD.enter(self._cancel_sync)
        try:
            request.engine.infer()
        except RuntimeError as exc:
            raise _failed(request, exc) from exc
        finally:
            GUARD.leave(token)
        _nice_engine_once(request.compiled)
        request.read_outputs()

    def start(self, done: Done) -> None:
        request = self.request
        request.bind_inputs()
        self._token = GUARD.enter(self._cancel_started)
        self._done = done
        watch = request.compiled.plugin.watch
        watch.add(id(self), request.engine, self._failed)
        try:
            with GUARD.calling():
                request.engine.start_async()
        except BaseException:
            watch.discard(id(self))
            self._done = None
            GUARD.leave(self._token)
            raise

    def cancel(self) -> None:
        """OpenVINO's cancel would drop the callback: a started inference runs to its end."""

    def _cancel_sync(self, _timeout: float) -> bool:
        """At exit: the sync ``infer`` raises, and its thread leaves the guard."""
        self.request.engine.cancel()
        return False

    def _cancel_started(self, timeout: float) -> bool:
        """At exit: a cancelled (or failed) start calls back no one, so it is over once
        ``wait_for`` raises; one that ended well has its callback to run (OpenVINO does not
        promise it has run when ``wait_for`` returns), so the callback leaves the guard."""
        engine = self.request.engine
        engine.cancel()
        try:
            engine.wait_for(max(1, int(1000 * timeout)))
        except RuntimeError:  # cancelled or failed: no callback will come
            return True
        return False

    def completed(self) -> None:  # on an OpenVINO thread
        token = self._token  # (done() may start this call again)
        _nice_engine_once(self.request.compiled)
        if not self.request.compiled.plugin.watch.discard(id(self)):
            return  # the watch already reported it failed
        done, self._done = self._done, None
        error: BaseException | None = None
        try:
            self.request.read_outputs()
        except BaseException as exc:
            error = exc
        try:
            if done is not None:
                done(error)
        finally:
            GUARD.leave(token)  # last: this thread is in Python until here

    def _failed(self, exc: BaseException) -> None:  # on the watch's thread
        token = self._token
        done, self._done = self._done, None
        try:
            if done is not None:
                done(_failed(self.request, exc))
        finally:
            GUARD.leave(token)


def _nice_engine_once(compiled: OpenVinoCompiledModel) -> None:
    """After the first inference, OpenVINO's stream threads exist: give them the workers'
    nice (:func:`~aioinfer.runtime.executors.nice_engine_threads`; nothing at nice 0)."""
    if not compiled.engine_threads_niced:
        compiled.engine_threads_niced = True
        nice_engine_threads()


def _on_done(ref: weakref.ref[OvCall]) -> None:
    call = ref()
    if call is not None:
        call.completed()


def _failed(request: OpenVinoInferRequest, exc: BaseException) -> InferenceError:
    compiled = request.compiled
    lines = [line for line in str(exc).splitlines() if line.strip()]
    error = InferenceError(f"{compiled.device}: OpenVINO inference of model "
                           f"{compiled.model.name!r} failed: {lines[-1] if lines else exc!r}",
                           device=compiled.device)
    error.__cause__ = exc
    return error
