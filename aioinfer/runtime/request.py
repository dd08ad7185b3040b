"""InferRequest: the public request, running a plugin's stages inline or on executors.

``infer()`` runs the stages on the calling thread (it is safe inside a running event loop, as
in a Jupyter cell). ``await infer_async()`` runs the same stages on their executors' workers
(see :mod:`.pipeline`), so the loop thread never runs a kernel, copy or conversion. Callers
without a loop use ``start_async()`` with ``wait()``, ``wait_for()`` or ``set_callback()``.
A request serves one inference at a time; using a busy request raises
:class:`~aioinfer.errors.RequestBusyError`.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import RequestBusyError, RequestError
from ..model import Port, _pick
from .completion import await_task
from .io import arrange_inputs, bound_buffer, check_input, check_output, write_outputs
from .pipeline import PipelineRun, new_run, timed_inline
from .results import Results
from .stages import Stage, StageGraph

if TYPE_CHECKING:
    from ..plugins.base import CompiledModel, SyncInferRequest


class InferRequest:
    """One infer request of a compiled model, with its own input and output buffers."""

    def __init__(self, compiled: CompiledModel, sync: SyncInferRequest) -> None:
        self._compiled = compiled
        self._sync = sync
        self._stages = sync.stages()
        self._busy = threading.Lock()
        self._results: Results | None = None
        self._current: PipelineRun | None = None  # the async run in progress
        self._last: PipelineRun | None = None  # the last start_async run, for wait()
        self._callback: Callable[[InferRequest, Any], None] | None = None
        self._callback_userdata: Any = None
        self._profile = _perf_count(compiled)
        self._timings: list[dict[str, Any]] = []
        self._memory = compiled.plugin.memory_device
        self._bound_inputs: dict[int, Any] = {}  # what set_tensor was given, by input index
        self._bound_outputs: dict[int, Any] = {}  # preallocated outputs, by output index

    @property
    def _stages(self) -> list[Stage]:
        """The plugin's stages (settable: the stage graph is rebuilt)."""
        return list(self._graph.stages)

    @_stages.setter
    def _stages(self, stages: list[Stage]) -> None:
        self._graph = StageGraph(stages, self._sync.entry_executor())

    @property
    def stage_graph(self) -> StageGraph:
        """The stages one inference of this request runs (see :mod:`aioinfer.runtime.stages`)."""
        return self._graph

    # -- ports and tensors -------------------------------------------------------------------
    @property
    def compiled_model(self) -> CompiledModel:
        return self._compiled

    @property
    def inputs(self) -> list[Port]:
        return self._compiled.inputs

    @property
    def outputs(self) -> list[Port]:
        return self._compiled.outputs

    @property
    def results(self) -> Results:
        """Results of the last completed inference."""
        if self._results is None:
            from ..errors import RequestError

            raise RequestError("no results yet: the request has not completed an inference")
        return self._results

    def set_tensor(self, key: str | int | Port, value: Any) -> None:
        """Set one input (by name, index or Port) for the next inference, or preallocate an
        output (by name or Port).

        A :class:`~aioinfer.Tensor` or :class:`~aioinfer.RemoteTensor` is used as it is, not
        copied: the device reads an input's buffer in place, and an output's result lands in
        the given buffer (see :func:`aioinfer.runtime.io.write_outputs`).
        """
        name = key.name if isinstance(key, Port) else key
        output = next((p for p in self.outputs if p.name == name), None)
        if output is not None and not any(p.name == name for p in self.inputs):
            self._bound_outputs[output.index] = check_output(output, value, self._memory)
            return
        port = _pick(self.inputs, name, "input")
        self._sync.inputs[port.index] = check_input(port, value, self._memory)
        self._bound_inputs[port.index] = value

    def set_input_tensors(self, inputs: Any) -> None:
        """Set several inputs at once (dict, list or one array)."""
        for port, value in zip(self.inputs, arrange_inputs(self.inputs, inputs), strict=True):
            self.set_tensor(port, value)

    def _bound(self, name: Any) -> Any:
        """The tensor object set for input or output ``name`` if it is still in use."""
        for port in self.inputs:
            if port.name == name or (isinstance(name, int) and port.index == name):
                value = self._bound_inputs.get(port.index)
                if value is not None and bound_buffer(value) is self._sync.inputs[port.index]:
                    return value
                return None
        for port in self.outputs:
            if port.name == name:
                return self._bound_outputs.get(port.index)
        return None

    def get_tensor(self, key: str | int | Port) -> Any:
        """An input set for this request, or an output of its last inference (a tensor given
        to :meth:`set_tensor` is returned as that same object)."""
        name = key.name if isinstance(key, Port) else key
        bound = self._bound(name)
        if bound is not None:
            return bound
        for port in self.inputs:
            if name in (port.name, port.index) and not isinstance(name, int):
                return self._sync.inputs[port.index]
        if isinstance(name, int):
            return self._sync.inputs[_pick(self.inputs, name, "input").index]
        return self.results[name]

    # -- running inline --------------------------------------------------------------------------
    def infer(self, inputs: Any = None) -> Results:
        """Run one inference on the calling thread and return its results.

        Works anywhere, also inside a running event loop (a Jupyter cell): it never touches a
        loop. Raises :class:`~aioinfer.errors.RequestBusyError` while the request is running.
        """
        self._acquire()
        try:
            self._prepare(inputs)
            self._profile = _perf_count(self._compiled)  # PERF_COUNT may change between runs
            if self._profile:
                self._timings = [timed_inline(stage) for stage in self._graph.stages]
            else:
                for stage in self._graph.stages:  # a topological order
                    stage.executor.run_inline(stage)
            return self._finish()
        finally:
            self._busy.release()

    # -- running on executors ---------------------------------------------------------------------
    async def infer_async(self, inputs: Any = None) -> Results:
        """Run one inference with every stage on its executor; await the results.

        Never blocks the event loop (asyncio, uvloop or trio). Cancelling the awaiting task
        stops the run before its next stage, waits for the running stage to finish, drops the
        results and re-raises the cancellation; the request is reusable at once.
        """
        run = self._begin(inputs)
        try:
            await await_task(run.start, run.cancel)
        except BaseException:
            if run.notify is None:  # never started: release here
                self._busy.release()
            raise
        if run.error is not None:
            raise run.error
        assert run.results is not None
        return run.results

    def start_async(self, inputs: Any = None, userdata: Any = None) -> None:
        """Start one inference on the executors and return at once (for code without a loop).

        Follow it with :meth:`wait`, :meth:`wait_for`, or a callback (:meth:`set_callback`).
        """
        run = self._begin(inputs)
        run.event = threading.Event()
        run.userdata = userdata
        self._last = run
        try:
            run.start(functools.partial(self._end_threaded, run))
        except BaseException:
            self._busy.release()
            raise

    def wait(self) -> Results:
        """Block until the inference started by :meth:`start_async` ends; return its results.

        Re-raises the inference's error (:class:`~aioinfer.errors.RequestCancelledError` if it
        was cancelled).
        """
        run = self._last_started()
        run.event.wait()
        return self._outcome(run)

    def wait_for(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; ``True`` if the inference has ended (then
        :meth:`wait` returns at once)."""
        return bool(self._last_started().event.wait(timeout))

    def set_callback(self, callback: Callable[[InferRequest, Any], None] | None,
                     userdata: Any = None) -> None:
        """Call ``callback(request, userdata)`` on a worker thread after each ``start_async``.

        The request is already free when it is called (the callback may start it again, or
        feed its results to another request); ``request.error`` tells a failed or cancelled
        run from a good one. ``userdata`` given to ``start_async`` takes precedence.
        """
        self._callback = callback
        self._callback_userdata = userdata

    def cancel(self) -> None:
        """Stop the running inference before its next stage (for callers without a loop).

        Its results are dropped; ``wait()`` and an awaiting ``infer_async`` raise
        :class:`~aioinfer.errors.RequestCancelledError`. Does nothing if the request is idle.
        """
        run = self._current
        if run is not None:
            run.cancel()

    @property
    def error(self) -> BaseException | None:
        """The error of the last ``start_async`` run, ``None`` if it succeeded."""
        return self._last.error if self._last is not None else None

    @property
    def busy(self) -> bool:
        """Whether an inference is running."""
        return self._busy.locked()

    def _start_child(self, notify: Callable[[PipelineRun], None]) -> PipelineRun:
        """Start one run with the inputs already set, for a composite request that drives
        this one (:class:`~aioinfer.runtime.subrequest.RequestExecutor`); ``notify(run)`` is
        called on a worker once the run has ended and this request is free again."""
        run = self._begin(None)
        try:
            run.start(lambda: notify(run))
        except BaseException:
            self._busy.release()
            raise
        return run

    def _begin(self, inputs: Any) -> PipelineRun:
        self._acquire()
        run = new_run(self, self._graph, inputs)
        self._profile = _perf_count(self._compiled)  # PERF_COUNT may change between runs
        if self._profile:
            run.timings = []
        self._current = run
        return run

    def _complete(self, run: PipelineRun) -> None:
        """Called on the worker that ends ``run``: free the request, then report."""
        if run.timings is not None:
            self._timings = run.timings
        self._current = None
        notify = run.notify
        self._busy.release()
        assert notify is not None
        notify()

    def _end_threaded(self, run: PipelineRun) -> None:
        callback = self._callback
        if callback is not None:
            userdata = run.userdata if run.userdata is not None else self._callback_userdata
            try:
                callback(self, userdata)
            except BaseException as exc:  # a failing callback must not kill the worker
                if run.error is None:
                    run.error = exc
        run.event.set()

    def _last_started(self) -> PipelineRun:
        run = self._last
        if run is None:
            raise RequestError("wait(): start_async() has not been called on this request")
        return run

    def _outcome(self, run: PipelineRun) -> Results:
        if run.error is not None:
            raise run.error
        assert run.results is not None
        return run.results

    def _acquire(self) -> None:
        if self._compiled._released:
            raise RequestError(f"{self._compiled!r} was released: compile the model again")
        if not self._busy.acquire(blocking=False):
            raise RequestBusyError("the infer request is busy: wait for it or create another")

    def _prepare(self, inputs: Any) -> None:
        if inputs is None:
            # An empty optional is None too, and a valid value of an optional input.
            missing = [p.name for p in self.inputs
                       if self._sync.inputs[p.index] is None and p.kind != "optional"]
            if missing:
                from ..errors import MissingInputError

                raise MissingInputError(f"missing input(s) {missing}: pass inputs or set_tensor",
                                        input_name=missing[0])
            return
        values = arrange_inputs(self.inputs, inputs)
        self._sync.inputs[:] = [check_input(p, v, self._memory)
                                for p, v in zip(self.inputs, values, strict=True)]

    def _finish(self) -> Results:
        outputs = self._sync.outputs
        if self._bound_outputs:
            write_outputs(self.outputs, outputs, self._bound_outputs)
        values: Sequence[Any] = [
            np.asarray(v) if isinstance(v, np.generic) else v for v in outputs
        ]
        self._results = Results([p.name for p in self.outputs], values)
        return self._results

    @property
    def profiling_info(self) -> list[dict[str, Any]]:
        """Per-node and per-stage timings of the last inference (empty unless PERF_COUNT is on).

        Each entry has ``node_name``, ``node_type`` (``"Stage"`` for a pipeline stage),
        ``status``, ``real_time`` and ``cpu_time`` (seconds) and ``exec_type`` (the kernel, or
        the executor a stage ran on).
        """
        if not self._profile:
            return []
        return [*self._sync.profiling_info(), *self._timings]

    def __repr__(self) -> str:
        state = "busy" if self._busy.locked() else "idle"
        return f"<InferRequest {self._compiled.model.name!r} on {self._compiled.device} {state}>"


def _perf_count(compiled: CompiledModel) -> bool:
    try:
        return bool(compiled.get_property("PERF_COUNT"))
    except Exception:  # a plugin without the property does not profile
        return False
