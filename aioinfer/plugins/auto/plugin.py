"""AutoPlugin: ``AUTO`` or ``AUTO:A,B`` chooses the device a model runs on.

Candidates and their order come from :mod:`.select`; the start-up and runtime fallbacks from
:mod:`.startup`; the runs are dispatched as MULTI's are (:mod:`aioinfer.plugins.multi.dispatch`),
through one dispatcher per plugin, shared by every model compiled with it: a device is used by
at most as many runs at once as its own optimum, and when it is busy the queued runs of the
model with the higher ``MODEL_PRIORITY`` get it first. ``PERFORMANCE_HINT=
CUMULATIVE_THROUGHPUT`` compiles on every candidate and spreads the runs as MULTI does.
``EXECUTION_DEVICES`` is the device(s) new runs go to now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import properties as P
from ...errors import NotSupportedError, UnsupportedOperationError
from ...model import Model
from ...properties import Property, PropertySet
from ..base import Plugin
from ..multi.compiled_model import MultiCompiledModel
from ..multi.dispatch import DEVICE_PRIORITY, EARLIEST_FINISH, Dispatcher, Lane, Lanes
from ..multi.plugin import MultiPlugin, device_config, multi_specs, targets, workers_of
from .select import candidates
from .startup import Startup


class AutoPlugin(MultiPlugin):
    """The virtual device that picks a device per model (and serves while it compiles)."""

    def __init__(self, name: str = "AUTO") -> None:
        super().__init__(name)
        self._capacity: dict[str, int] = {}
        self._dispatchers = {policy: Dispatcher(self._capacity.get, policy=policy)
                             for policy in (EARLIEST_FINISH, DEVICE_PRIORITY)}

    def _specs(self) -> list[Property]:
        return [
            *multi_specs("AUTO (picks the device for each model)", P.PerformanceMode.LATENCY),
            Property(P.ENABLE_STARTUP_FALLBACK, "serve from the last candidate while the "
                     "chosen device compiles", validate=P.boolean, default=True),
            Property(P.ENABLE_RUNTIME_FALLBACK, "retry a failed run on the next candidate",
                     validate=P.boolean, default=False),
            Property(P.MODEL_PRIORITY, "LOW, MEDIUM, HIGH or DEFAULT (MEDIUM): which model's "
                     "runs get a busy device first", validate=P.model_priority,
                     default=P.ModelPriority.DEFAULT),
        ]

    # AUTO's compiled models do not export (AutoCompiledModel.export_model), so not MULTI's
    # import either: the base's refusal, which also tells CACHE_DIR that AUTO does not export
    import_model = Plugin.import_model  # type: ignore[assignment]

    def _listed(self, props: PropertySet) -> list[str]:
        return [t.base for t in targets(self, props)] if props.get(P.DEVICE_PRIORITIES) else []

    def _lane_added(self, lane: Lane) -> None:
        self._capacity[lane.device] = max(self._capacity.get(lane.device, 0), lane.workers)

    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        """Every node, if some candidate runs the whole model; else nothing."""
        props = self._config(config)
        hint = props.get(P.PERFORMANCE_HINT)
        kept, _ = candidates(self, model, self._listed(props),
                             lambda d: device_config(self, props, d, hint))
        return {node.name: self.name for node in model.proto.graph.node} if kept else {}

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> AutoCompiledModel:
        props = self._config(config)
        hint = props.get(P.PERFORMANCE_HINT)
        cumulative = hint is P.PerformanceMode.CUMULATIVE_THROUGHPUT
        device_hint = P.PerformanceMode.THROUGHPUT if cumulative else hint
        kept, rejected = candidates(self, model, self._listed(props),
                                    lambda d: device_config(self, props, d, device_hint))
        if not kept:
            raise UnsupportedOperationError(
                f"{self.name}: no device can run all of model {model.name!r}: "
                f"{'; '.join(rejected) or 'no devices'}", device=self.name)
        lanes = Lanes([], rank=props.get(P.MODEL_PRIORITY).rank,
                      runtime_fallback=props.get(P.ENABLE_RUNTIME_FALLBACK))
        dispatcher = self._dispatchers[props.get(P.SCHEDULE_POLICY)]
        core = self.get_core()

        def compile_on(device: str) -> Any:
            return core.compile_model(model, device,
                                      device_config(self, props, device, device_hint))

        startup = Startup(model, kept if not cumulative else kept[:1], lanes, dispatcher,
                          compile_on, lambda c: workers_of(c, None),
                          helper=props.get(P.ENABLE_STARTUP_FALLBACK) and not cumulative,
                          on_lane=self._lane_added)
        startup.begin()
        if cumulative:
            for device in kept[1:]:
                startup._compile_in_background(device, "fallback")
        return AutoCompiledModel(self, model, props, lanes, dispatcher, startup)


class AutoCompiledModel(MultiCompiledModel):
    """A MULTI compiled model whose lanes change over time (:class:`.startup.Startup`)."""

    def __init__(self, plugin: AutoPlugin, model: Model, props: PropertySet, lanes: Lanes,
                 dispatcher: Dispatcher, startup: Startup) -> None:
        super().__init__(plugin, model, props, lanes, dispatcher)
        self.startup = startup

    def export_model(self) -> bytes:
        """Not supported: which devices serve changes while AUTO starts up, and an import
        would choose again (compile on the chosen device and export that instead)."""
        raise NotSupportedError(f"{self.plugin.name}: export_model is not supported (the "
                                "devices that serve change at start-up: export the chosen "
                                "device's own compiled model)", device=self.plugin.name)

    def release(self, timeout: float | None = 5.0) -> None:
        self.startup.close()
        super().release(timeout)
