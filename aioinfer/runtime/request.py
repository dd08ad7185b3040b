"""InferRequest: the public request, running a plugin's stages inline or awaited.

``infer()`` runs the stages on the calling thread (it is safe inside a running event loop, as
in a Jupyter cell). ``await infer_async()`` runs the same stages on their executors' workers,
so the loop thread never runs a kernel, copy or conversion. A request serves one inference at
a time; using a busy request raises :class:`~aioinfer.errors.RequestBusyError`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import RequestBusyError
from ..model import Port, _pick
from .executors import HOST
from .io import arrange_inputs, check_input
from .results import Results

if TYPE_CHECKING:
    from ..plugins.base import CompiledModel, Stage, SyncInferRequest


class InferRequest:
    """One infer request of a compiled model, with its own input and output buffers."""

    def __init__(self, compiled: CompiledModel, sync: SyncInferRequest) -> None:
        self._compiled = compiled
        self._sync = sync
        self._stages: list[Stage] = sync.stages()
        self._busy = threading.Lock()
        self._pending: Any = None  # inputs given to the current call, checked in a stage
        self._results: Results | None = None

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
        """Set one input (by name, index or Port) for the next inference."""
        port = _pick(self.inputs, key.name if isinstance(key, Port) else key, "input")
        self._sync.inputs[port.index] = check_input(port, value)

    def set_input_tensors(self, inputs: Any) -> None:
        """Set several inputs at once (dict, list or one array)."""
        for port, value in zip(self.inputs, arrange_inputs(self.inputs, inputs)):
            self._sync.inputs[port.index] = check_input(port, value)

    def get_tensor(self, key: str | int | Port) -> Any:
        """An input set for this request, or an output of its last inference."""
        name = key.name if isinstance(key, Port) else key
        for port in self.inputs:
            if name in (port.name, port.index) and not isinstance(name, int):
                return self._sync.inputs[port.index]
        if isinstance(name, int):
            return self._sync.inputs[_pick(self.inputs, name, "input").index]
        return self.results[name]

    # -- running -------------------------------------------------------------------------------
    def infer(self, inputs: Any = None) -> Results:
        """Run one inference on the calling thread and return its results."""
        self._acquire()
        try:
            self._pending = inputs
            self._prepare()
            for stage in self._stages:
                stage.fn()
            return self._finish()
        finally:
            self._release()

    async def infer_async(self, inputs: Any = None) -> Results:
        """Run one inference with every stage on its executor; await the results.

        Cancelling the awaiting task waits for the running stage to stop, drops its results
        and leaves the request reusable.
        """
        self._acquire()
        try:
            self._pending = inputs
            await HOST.run(self._prepare)
            for stage in self._stages:
                await stage.executor.run(stage.fn)
            return self._finish()
        finally:
            self._release()

    def _acquire(self) -> None:
        if not self._busy.acquire(blocking=False):
            raise RequestBusyError("the infer request is busy: wait for it or create another")

    def _release(self) -> None:
        self._pending = None
        self._busy.release()

    def _prepare(self) -> None:
        inputs = self._pending
        if inputs is None:
            missing = [p.name for p in self.inputs if self._sync.inputs[p.index] is None]
            if missing:
                from ..errors import MissingInputError

                raise MissingInputError(f"missing input(s) {missing}: pass inputs or set_tensor",
                                        input_name=missing[0])
            return
        values = arrange_inputs(self.inputs, inputs)
        self._sync.inputs[:] = [check_input(p, v) for p, v in zip(self.inputs, values)]

    def _finish(self) -> Results:
        outputs = self._sync.outputs
        values: Sequence[Any] = [
            np.asarray(v) if isinstance(v, np.generic) else v for v in outputs
        ]
        self._results = Results([p.name for p in self.outputs], values)
        return self._results

    @property
    def profiling_info(self) -> list[dict[str, Any]]:
        """Per-node / per-stage timings of the last inference (with PERF_COUNT on)."""
        return self._sync.profiling_info()

    def __repr__(self) -> str:
        state = "busy" if self._busy.locked() else "idle"
        return f"<InferRequest {self._compiled.model.name!r} on {self._compiled.device} {state}>"
