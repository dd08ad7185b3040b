"""MultiCompiledModel and MultiInferRequest: one compiled model per device, one dispatch
stage per request (see :mod:`.dispatch`).

``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` is the sum of the devices' workers (each device's own
optimum, or the ``(N)`` given in ``MULTI:NUMPY(2),TEMPLATE(1)``); ``EXECUTION_DEVICES`` lists
the devices. :meth:`MultiCompiledModel.statistics` tells how many runs each device served.
The synchronous ``infer()`` runs on the first device on the calling thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import properties as P
from ...model import Model
from ...properties import Property, PropertySet
from ..base import CompiledModel, Plugin, Stage, SyncInferRequest
from .dispatch import Dispatch, Dispatcher, DispatchExecutor, Lanes

if TYPE_CHECKING:
    from ...runtime.request import InferRequest


class MultiCompiledModel(CompiledModel):
    """A model compiled on several devices; each run goes to a free one."""

    def __init__(self, plugin: Plugin, model: Model, props: PropertySet, lanes: Lanes,
                 dispatcher: Dispatcher, extra: list[Property] | None = None) -> None:
        super().__init__(plugin, model, props)
        self.config = props  # as compiled: what export_model stores
        self.lanes = lanes
        self.executor = DispatchExecutor(f"{plugin.name} dispatch", dispatcher)
        fixed = {k: v for k, v in props.as_dict().items() if k != P.PERF_COUNT}
        self.properties = PropertySet([
            Property(P.PERF_COUNT, "passed on to the devices", validate=P.boolean,
                     default=props.get(P.PERF_COUNT)),
            *[Property(key, "as compiled", mutable=False, default=value)
              for key, value in fixed.items() if key not in {e.key for e in extra or []}],
            Property(P.EXECUTION_DEVICES, "the devices runs go to now", mutable=False,
                     getter=lambda: self.lanes.devices),
            Property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS, "the sum of the devices' workers",
                     mutable=False, getter=lambda: sum(
                         lane.workers for lane in self.lanes.lanes if not lane.draining)),
            Property(P.MODEL_NAME, "the model's graph name", mutable=False,
                     default=model.name),
            *(extra or []),
        ], plugin.name)

    @property
    def device(self) -> str:
        return f"{self.plugin.name}:{','.join(self.lanes.devices)}"

    def current_lanes(self) -> Lanes:
        return self.lanes

    def submodels(self) -> list[CompiledModel]:
        return [lane.compiled for lane in self.lanes.lanes]

    def statistics(self) -> dict[str, dict[str, Any]]:
        """Per device: runs ``completed`` and ``failed``, ``busy`` workers, ``workers``, and
        whether it is ``serving`` now (AUTO's helper is not, once drained and released)."""
        stats: dict[str, dict[str, Any]] = {}
        for lane in [*self.lanes.retired, *self.lanes.lanes]:
            entry = stats.setdefault(lane.device, {"completed": 0, "failed": 0, "busy": 0,
                                                   "workers": 0})
            entry["completed"] += lane.completed
            entry["failed"] += lane.failed
            entry["busy"] += lane.busy
            entry["workers"] = lane.workers
            entry["serving"] = lane in self.lanes.lanes and not lane.draining
        return stats

    def set_property(self, properties: Any) -> None:
        self.properties.set(properties)
        if P.PERF_COUNT in properties:
            for compiled in self.submodels():
                if P.PERF_COUNT in compiled.get_property(P.SUPPORTED_PROPERTIES):
                    compiled.set_property({P.PERF_COUNT: properties[P.PERF_COUNT]})

    def export_model(self) -> bytes:
        """Each device's own export of the model (:mod:`.export`)."""
        from .export import export_model

        return export_model(self)

    def create_sync_request(self) -> MultiInferRequest:
        return MultiInferRequest(self)


class MultiInferRequest(SyncInferRequest):
    """One dispatch stage; ``executed_on`` is the device of the last run."""

    compiled: MultiCompiledModel

    def __init__(self, compiled: MultiCompiledModel) -> None:
        super().__init__(compiled)
        self.executed_on: str | None = None
        self._inline: dict[str, InferRequest] = {}  # the sync path's own requests

    def stages(self) -> list[Stage]:
        compiled = self.compiled
        return [Stage("dispatch", compiled.executor,
                      Dispatch(self, compiled.current_lanes, self._infer_inline))]

    def _infer_inline(self) -> None:
        """``infer()``: on the first device that is not draining, on this thread (the next
        device after a failure when runtime fallback is on)."""
        lanes = self.compiled.current_lanes()
        failure: BaseException | None = None
        for lane in [lane for lane in lanes.lanes if not lane.draining]:
            request = self._inline.get(lane.device)
            if request is None or request.compiled_model is not lane.compiled:
                request = self._inline[lane.device] = lane.compiled.create_infer_request()
            request._sync.inputs[:] = self.inputs
            try:
                request.infer()
            except Exception as exc:
                if not lanes.runtime_fallback:
                    raise
                failure = exc
                continue
            self.outputs = list(request._sync.outputs)
            self.executed_on = lane.device
            return
        assert failure is not None
        raise failure

    def profiling_info(self) -> list[dict[str, Any]]:
        return []


