"""MultiPlugin: ``MULTI:A,B`` compiles the model on every listed device and spreads requests.

Each device compiles with ``PERFORMANCE_HINT=THROUGHPUT`` (as OpenVINO's MULTI forces), plus
its entry of ``DEVICE_PROPERTIES``. A device that fails to compile is dropped (the compile
fails only when every device does, naming each). ``query_model`` keeps the nodes every device
supports, since any run may go to any device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import properties as P
from ...devices import DeviceName, parse_device
from ...errors import AioInferError, DeviceNotFoundError
from ...model import Model
from ...properties import Property, PropertySet
from ..base import CompiledModel, Plugin
from ..hetero.plugin import device_list, device_properties
from .compiled_model import MultiCompiledModel
from .dispatch import DEVICE_PRIORITY, EARLIEST_FINISH, Dispatcher, Lane, Lanes


def multi_specs(full_name: str, hint: P.PerformanceMode) -> list[Property]:
    return [
        Property(P.FULL_DEVICE_NAME, "human-readable device name", mutable=False,
                 default=full_name),
        Property(P.DEVICE_PRIORITIES, "devices in priority order, e.g. NUMPY,TEMPLATE (a "
                 "(N) sets a device's workers: NUMPY(4))", validate=device_list, default=""),
        Property(P.DEVICE_PROPERTIES, "{device: {property: value}} for the devices",
                 validate=device_properties, default={}),
        Property(P.PERFORMANCE_HINT, "passed on to the devices", validate=P.performance_mode,
                 default=hint),
        Property(P.PERF_COUNT, "passed on to the devices", validate=P.boolean, default=False),
        Property(P.SCHEDULE_POLICY, f"{EARLIEST_FINISH} (a device takes a run only if it would "
                 f"finish it first) or {DEVICE_PRIORITY} (the first device with an idle worker)",
                 validate=schedule_policy, default=EARLIEST_FINISH),
    ]


def schedule_policy(value: Any) -> str:
    text = str(value).upper()
    if text not in (EARLIEST_FINISH, DEVICE_PRIORITY):
        raise ValueError(f"expected {EARLIEST_FINISH} or {DEVICE_PRIORITY}")
    return text


def targets(plugin: Plugin, props: PropertySet) -> list[DeviceName]:
    """The devices of ``DEVICE_PRIORITIES``, each checked to exist and not to be virtual."""
    text = props.get(P.DEVICE_PRIORITIES)
    if not text:
        raise DeviceNotFoundError(
            f"{plugin.name} needs devices: compile for '{plugin.name}:NUMPY,TEMPLATE' or set "
            f"{P.DEVICE_PRIORITIES}", device=plugin.name)
    parsed = list(parse_device(f"{plugin.name}:{text}").targets)
    core = plugin.get_core()
    for device in parsed:
        if core.plugin(device.base).virtual:  # DeviceNotFoundError names an unknown one
            raise DeviceNotFoundError(f"{plugin.name}: {device.base} is a virtual device; "
                                      f"{plugin.name} runs on real devices", device=device.base)
    return parsed


def device_config(plugin: Plugin, props: PropertySet, device: str, hint: Any) -> dict[str, Any]:
    """What a device compiles with: the hint and PERF_COUNT where it has them, then its own
    ``DEVICE_PROPERTIES`` entry."""
    supported = plugin.get_core().get_property(device, P.SUPPORTED_PROPERTIES)
    config: dict[str, Any] = {}
    if P.PERFORMANCE_HINT in supported:
        config[P.PERFORMANCE_HINT] = hint
    if P.PERF_COUNT in supported:
        config[P.PERF_COUNT] = props.get(P.PERF_COUNT)
    config.update(props.get(P.DEVICE_PROPERTIES).get(device, {}))
    return config


def workers_of(compiled: CompiledModel, count: int | None) -> int:
    if count:
        return count
    return max(1, int(compiled.get_property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS)))


class MultiPlugin(Plugin):
    """The virtual device that runs each request on whichever listed device is free."""

    virtual = True
    targets_property = P.DEVICE_PRIORITIES

    def __init__(self, name: str = "MULTI") -> None:
        self.name = name
        self.properties = PropertySet(self._specs(), name)
        self._dispatchers = {policy: Dispatcher(policy=policy)
                             for policy in (EARLIEST_FINISH, DEVICE_PRIORITY)}

    def _specs(self) -> list[Property]:
        return multi_specs("MULTI (requests spread over several devices)",
                           P.PerformanceMode.THROUGHPUT)

    def _config(self, config: Mapping[str, Any]) -> PropertySet:
        settable = {k: self.properties.get(k)
                    for k, rw in self.properties.supported().items() if rw == "RW"}
        props = PropertySet(self._specs(), self.name, **settable)
        props.set(config)
        return props

    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        """The nodes every device can run."""
        props = self._config(config)
        core = self.get_core()
        common: set[str] | None = None
        for device in targets(self, props):
            found = set(core.query_model(model, device.base, device_config(
                self, props, device.base, props.get(P.PERFORMANCE_HINT))))
            common = found if common is None else common & found
        return {node.name: self.name for node in model.proto.graph.node
                if node.name in (common or set())}

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> MultiCompiledModel:
        props = self._config(config)
        core = self.get_core()
        lanes: list[Lane] = []
        failures: list[str] = []
        for device in targets(self, props):
            name = device.base
            try:
                compiled = core.compile_model(model, name, device_config(
                    self, props, name, props.get(P.PERFORMANCE_HINT)))
            except AioInferError as exc:
                failures.append(f"{name}: {exc}")
                continue
            lanes.append(Lane(name, compiled, workers_of(compiled, device.count)))
        if not lanes:
            raise DeviceNotFoundError(f"{self.name}: no device could compile model "
                                      f"{model.name!r}: {'; '.join(failures)}", device=self.name)
        return MultiCompiledModel(self, model, props, Lanes(lanes),
                                  self._dispatchers[props.get(P.SCHEDULE_POLICY)])

    def import_model(self, blob: bytes, config: Mapping[str, Any]) -> MultiCompiledModel:
        """A MULTI model from its ``export_model`` bytes (:mod:`.export`)."""
        from .export import import_model

        return import_model(self, blob, config)
