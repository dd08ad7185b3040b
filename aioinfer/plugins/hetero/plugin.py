"""HeteroPlugin: affinities from the devices' ``query_model``, networkx partition, compile.

``HETERO:A,B`` (or ``MULTI_DEVICE_PRIORITIES="A,B"``, OpenVINO's spelling) lists devices in
priority order. Each node goes to the first device whose ``query_model`` claims it; a node no
device claims is an error naming the node, its op and the devices tried. ``AFFINITY`` (a
mapping node name -> device) pins nodes by hand and takes precedence. The model is then cut
into acyclic subgraphs (:func:`aioinfer.graph.partition.partition`), each compiled by its own
device through the Core (``get_core()``), as OpenVINO's ``src/plugins/hetero`` does.
``DEVICE_PROPERTIES`` (``{device: {key: value}}``) configures the devices HETERO compiles for;
``PERF_COUNT`` and the performance hints are passed on to the devices that support them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import properties as P
from ...devices import parse_device
from ...errors import (
    AioInferError,
    DeviceNotFoundError,
    InvalidPropertyValueError,
    UnsupportedOperationError,
)
from ...graph.partition import partition
from ...model import Model
from ...properties import Property, PropertySet
from ..base import CompiledModel, Plugin
from .compiled_model import HeteroCompiledModel, SubgraphCompileError

# Keys HETERO passes on to each device that supports them (unless DEVICE_PROPERTIES says).
PASSED_ON = (P.PERF_COUNT, P.PERFORMANCE_HINT, P.PERFORMANCE_HINT_NUM_REQUESTS,
             P.INFERENCE_PRECISION_HINT)


def device_list(value: Any) -> str:
    """``"A,B"`` or a list of device names -> the canonical ``"A,B"`` string."""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    text = str(value).strip()
    if not text:
        return ""
    parsed = parse_device(f"HETERO:{text}")
    return ",".join(str(t) for t in parsed.targets)


def affinity_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping {node name: device}")
    return {str(node): str(parse_device(str(device))) for node, device in value.items()}


def device_properties(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise ValueError("expected a mapping {device: {property: value}}")
    return {str(parse_device(str(k))): dict(v) for k, v in value.items()}


def hetero_specs(device: str) -> list[Property]:
    return [
        Property(P.FULL_DEVICE_NAME, "human-readable device name", mutable=False,
                 default="HETERO (one model split over several devices)"),
        Property(P.DEVICE_PRIORITIES, "devices in priority order, e.g. NUMPY,TEMPLATE",
                 validate=device_list, default=""),
        Property(P.AFFINITY, "{node name: device} overrides", validate=affinity_map,
                 default={}),
        Property(P.DEVICE_PROPERTIES, "{device: {property: value}} for the devices",
                 validate=device_properties, default={}),
        Property(P.PERF_COUNT, "collect per-subgraph and per-node profiling",
                 validate=P.boolean, default=False),
        Property(P.PERFORMANCE_HINT, "passed on to the devices", validate=P.performance_mode,
                 default=P.PerformanceMode.LATENCY),
        Property(P.PERFORMANCE_HINT_NUM_REQUESTS, "passed on to the devices",
                 validate=P.non_negative_int, default=0),
        Property(P.INFERENCE_PRECISION_HINT, "passed on to the devices", validate=P.precision,
                 default="f32"),
    ]


class HeteroPlugin(Plugin):
    """The virtual device that splits one model over several devices."""

    virtual = True
    targets_property = P.DEVICE_PRIORITIES

    def __init__(self, name: str = "HETERO") -> None:
        self.name = name
        self.properties = PropertySet(hetero_specs(name), name)

    def _config(self, config: Mapping[str, Any]) -> PropertySet:
        settable = {k: self.properties.get(k)
                    for k, rw in self.properties.supported().items() if rw == "RW"}
        props = PropertySet(hetero_specs(self.name), self.name, **settable)
        props.set(config)
        return props

    def devices(self, props: PropertySet) -> list[str]:
        """The listed devices, each checked to exist (and not to be HETERO itself)."""
        text = props.get(P.DEVICE_PRIORITIES)
        if not text:
            raise DeviceNotFoundError(
                f"{self.name} needs devices: compile for '{self.name}:NUMPY,TEMPLATE' or set "
                f"{P.DEVICE_PRIORITIES}", device=self.name)
        devices = text.split(",")
        core = self.get_core()
        for device in devices:
            plugin = core.plugin(device)  # DeviceNotFoundError names an unknown one
            if isinstance(plugin, HeteroPlugin):
                raise DeviceNotFoundError(f"{self.name}: {device} cannot be a device of "
                                          f"{self.name}", device=device)
        return devices

    def device_config(self, props: PropertySet, device: str) -> dict[str, Any]:
        supported = self.get_core().get_property(device, P.SUPPORTED_PROPERTIES)
        config = {k: props.get(k) for k in PASSED_ON if k in supported}
        config.update(props.get(P.DEVICE_PROPERTIES).get(device, {}))
        return config

    # -- affinities --------------------------------------------------------------------------
    def affinities(self, model: Model, props: PropertySet, *, strict: bool) -> dict[str, str]:
        """Node -> device: manual ``AFFINITY`` first, then each device's ``query_model`` in
        priority order. ``strict``: every node must get a device."""
        devices = self.devices(props)
        nodes = [node.name for node in model.proto.graph.node]
        assigned: dict[str, str] = {}
        manual = props.get(P.AFFINITY)
        known = set(nodes)
        for node, device in manual.items():
            if node not in known:
                raise InvalidPropertyValueError(
                    f"{self.name}: {P.AFFINITY} names node {node!r}, which the model "
                    f"{model.name!r} does not have", key=P.AFFINITY, device=self.name)
            if device not in devices:
                raise InvalidPropertyValueError(
                    f"{self.name}: {P.AFFINITY} puts node {node!r} on {device}, which is not "
                    f"one of {','.join(devices)}", key=P.AFFINITY, device=self.name)
            assigned[node] = device
        core = self.get_core()
        for device in devices:
            if len(assigned) == len(nodes):
                break
            supported = core.query_model(model, device, self.device_config(props, device))
            for node in nodes:
                if node not in assigned and node in supported:
                    assigned[node] = device
        if strict and len(assigned) < len(nodes):
            node = next(n for n in model.proto.graph.node if n.name not in assigned)
            raise UnsupportedOperationError(
                f"{self.name}: no device can run node {node.name!r} "
                f"({node.domain + '.' if node.domain else ''}{node.op_type}); tried "
                f"{', '.join(devices)}",
                node=node.name, op_type=node.op_type, device=f"{self.name}:{','.join(devices)}")
        return {n: assigned[n] for n in nodes if n in assigned}

    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        """The merged affinities: each node the listed devices can run -> its device."""
        return self.affinities(model, self._config(config), strict=False)

    # -- compile -----------------------------------------------------------------------------
    def compile_model(self, model: Model, config: Mapping[str, Any]) -> HeteroCompiledModel:
        props = self._config(config)
        affinities = self.affinities(model, props, strict=True)
        cut = partition(model, affinities)
        core = self.get_core()
        compiled: list[CompiledModel] = []
        try:
            for sub in cut.subgraphs:
                submodel = cut.submodel(sub.index)
                try:
                    compiled.append(core.compile_model(
                        submodel, sub.device, self.device_config(props, sub.device)))
                except Exception as exc:  # a plugin's own bug too: named, with its cause
                    what = "" if isinstance(exc, AioInferError) else f"{type(exc).__name__}: "
                    raise SubgraphCompileError(
                        f"{self.name}: {sub.device} failed to compile subgraph {sub.index} "
                        f"({len(sub.nodes)} nodes, {sub.nodes[0]!r}..{sub.nodes[-1]!r}): "
                        f"{what}{exc}",
                        device=sub.device, subgraph=sub.index) from exc
        except BaseException:
            for done in compiled:  # nothing half-built keeps threads
                done.release()
            raise
        return HeteroCompiledModel(self, model, props, cut, compiled)

    def import_model(self, blob: bytes, config: Mapping[str, Any]) -> HeteroCompiledModel:
        """A HETERO model from its ``export_model`` bytes (:mod:`.export`); ``config`` may
        only change ``PERF_COUNT``: the devices and affinities are the exported ones."""
        from .export import import_model

        return import_model(self, blob, config)
