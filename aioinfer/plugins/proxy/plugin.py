"""ProxyPlugin: ``CPU`` as one name over the plugins that run on the host CPU.

OpenVINO's ``src/plugins/proxy`` in small. The proxy stands for the plugins of
:data:`HOST_CPU_PLUGINS` (alias mode): those that load and are available are grouped by their
``DEVICE_UUID`` (a plugin without one is a group of its own), and each group is one device of
the proxy, ``CPU.0``..``CPU.N`` (``CPU`` alone when there is one). In a group the first plugin
in priority order is the *primary*, the others are *fallbacks*:

- a model the primary fully supports compiles on the primary directly; the proxy costs one
  ``query_model`` and returns the primary's own compiled model (no extra stage per request);
- a model with a node only a fallback supports compiles as ``HETERO:primary,fallback...``,
  so ``EXECUTION_DEVICES`` names every plugin it runs on.

Properties the proxy does not own go to the primary; ``DEVICE_PROPERTIES``
(``{device: {key: value}}``) configures the primary and the fallbacks by their own names.
``MULTI_DEVICE_PRIORITIES`` reorders or restricts the plugins (``"NUMPY"``: no fallback).
The hidden plugins are not in ``available_devices`` but stay addressable by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ... import properties as P
from ...devices import parse_device
from ...errors import (
    DeviceNotFoundError,
    InvalidPropertyValueError,
    PluginLoadError,
    PropertyError,
    UnsupportedOperationError,
)
from ...model import Model
from ...properties import Property, PropertySet
from ..base import CompiledModel, Plugin

HOST_CPU_PLUGINS: tuple[str, ...] = ("OPENVINO", "ORT", "NUMPY", "TEMPLATE")
"""The plugins behind ``CPU``, in priority order: the first one that loads is the primary, the
others are its fallbacks. The one place that says which engines the proxy uses; a name with
no plugin (an engine that is not installed) is skipped."""

_OWN = (P.AVAILABLE_DEVICES, P.PROXY_ALIAS_FOR, P.DEVICE_PRIORITIES, P.DEVICE_PROPERTIES,
        P.DEVICE_ID, P.DEVICE_UUID)


def _devices_of(name: str, plugin: Plugin) -> list[tuple[str, str]]:
    """(device string, DEVICE_UUID or "") for each device of a plugin. A plugin reports the
    UUID of its current ``DEVICE_ID``, so of several ids only that one's is known."""
    try:
        uuid = str(plugin.get_property(P.DEVICE_UUID))
    except PropertyError:
        uuid = ""
    ids = plugin.device_ids()
    if len(ids) <= 1:
        return [(name, uuid)]
    try:
        current = str(plugin.get_property(P.DEVICE_ID))
    except PropertyError:
        current = None
    return [(f"{name}.{i}", uuid if i == current else "") for i in ids]


def _names(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    text = str(value).strip()
    if not text:
        return ""
    return ",".join(t.base for t in parse_device(f"PROXY:{text}").targets)


def _device_properties(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping) or not all(isinstance(v, Mapping) for v in value.values()):
        raise ValueError("expected a mapping {device: {property: value}}")
    return {str(parse_device(str(k))): dict(v) for k, v in value.items()}


class ProxyPlugin(Plugin):
    """One device name over several plugins of the same hardware (``CPU``)."""

    def __init__(self, name: str = "CPU", alias_for: tuple[str, ...] = HOST_CPU_PLUGINS,
                 uuid: Callable[[], str] | None = P.host_cpu_uuid) -> None:
        self.name = name
        self.alias_for = tuple(a.upper() for a in alias_for)
        self._uuid = uuid  # only devices with this UUID (None: group every device by UUID)
        self.properties = PropertySet([
            Property(P.DEVICE_PRIORITIES, "the plugins to use, in priority order (default: "
                     f"{','.join(self.alias_for)}, those installed)", validate=_names,
                     default=""),
            Property(P.DEVICE_PROPERTIES, "{device: {property: value}} for the primary and "
                     "the fallbacks", validate=_device_properties, default={}),
        ], name)

    # -- the devices behind the proxy ----------------------------------------------------------
    def _order(self) -> list[str]:
        chosen = self.properties.get(P.DEVICE_PRIORITIES)
        if not chosen:
            return list(self.alias_for)
        names = chosen.split(",")
        for device in names:
            if parse_device(device).name not in self.alias_for:
                raise InvalidPropertyValueError(
                    f"{self.name}: {P.DEVICE_PRIORITIES} names {device}, which {self.name} "
                    f"does not stand for (it stands for {','.join(self.alias_for)})",
                    key=P.DEVICE_PRIORITIES, device=self.name)
        return names

    def groups(self) -> list[list[str]]:
        """The proxy's devices: the hidden devices grouped by ``DEVICE_UUID``, each group in
        priority order (its primary first). The CPU proxy keeps only the devices that report
        the host CPU's UUID (an engine's GPU is not a CPU)."""
        core = self.get_core()
        wanted = self._uuid() if self._uuid is not None else None
        groups: dict[str, list[str]] = {}
        for name in self._order():
            try:
                plugin = core.plugin(name)
            except (DeviceNotFoundError, PluginLoadError):
                continue  # not installed
            if plugin is self or plugin.virtual or not plugin.is_available():
                continue
            for device, uuid in _devices_of(name, plugin):
                if wanted is not None and uuid != wanted:
                    continue
                groups.setdefault(uuid or device, []).append(device)
        return list(groups.values())

    def hidden_devices(self) -> tuple[str, ...]:
        return tuple(d for group in self.groups() for d in group)

    def device_ids(self) -> tuple[str, ...]:
        return tuple(str(k) for k in range(len(self.groups())))

    def is_available(self) -> bool:
        return bool(self.groups())

    def chain(self, device_id: Any = None) -> list[str]:
        """The primary and fallback devices of proxy device ``device_id`` (default 0)."""
        groups = self.groups()
        if not groups:
            raise DeviceNotFoundError(
                f"{self.name}: none of {', '.join(self._order())} is installed and available",
                device=self.name)
        index = 0 if device_id in (None, "") else int(device_id)
        if not 0 <= index < len(groups):
            raise DeviceNotFoundError(f"{self.name}.{device_id} not found: {self.name} has "
                                      f"{len(groups)} device(s)", device=f"{self.name}.{device_id}")
        return groups[index]

    # -- properties --------------------------------------------------------------------------------
    def get_property(self, key: str) -> Any:
        key = str(key)
        if key == P.SUPPORTED_PROPERTIES:
            supported = dict(self.get_core().get_property(self.chain()[0], key))
            supported.update({k: "RO" for k in _OWN}, **self.properties.supported())
            return supported
        if key == P.AVAILABLE_DEVICES:
            return list(self.device_ids())
        if key == P.PROXY_ALIAS_FOR:
            return [d for group in self.groups() for d in group]
        if key == P.DEVICE_ID:
            return "0"
        if key in (P.DEVICE_PRIORITIES, P.DEVICE_PROPERTIES):
            if key == P.DEVICE_PRIORITIES and not self.properties.get(key):
                return ",".join(self.chain())
            return self.properties.get(key)
        return self.get_core().get_property(self.chain()[0], key)

    def set_property(self, properties: Mapping[str, Any]) -> None:
        own = {k: v for k, v in properties.items() if k in (P.DEVICE_PRIORITIES,
                                                             P.DEVICE_PROPERTIES)}
        rest = {k: v for k, v in properties.items() if k not in own}
        self.properties.set(own)
        if rest:
            self.get_core().plugin(self.chain()[0]).set_property(rest)

    # -- models ------------------------------------------------------------------------------------
    def _split(self, config: Mapping[str, Any]) -> tuple[list[str], dict[str, dict[str, Any]],
                                                         dict[str, Any]]:
        """(devices, per-device config, the rest) for one compile or query."""
        config = dict(config)
        device_id = config.pop(P.DEVICE_ID, None)
        own = PropertySet([Property(P.DEVICE_PROPERTIES, "", validate=_device_properties,
                                    default=self.properties.get(P.DEVICE_PROPERTIES))],
                          self.name)
        if P.DEVICE_PROPERTIES in config:
            own.set({P.DEVICE_PROPERTIES: config.pop(P.DEVICE_PROPERTIES)})
        chain = self.chain(device_id)
        per_device = own.get(P.DEVICE_PROPERTIES)
        return chain, {d: dict(per_device.get(d, {})) for d in chain}, config

    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        """Each node the primary or a fallback can run -> this proxy's name."""
        chain, per_device, rest = self._split(config)
        core = self.get_core()
        found = core.query_model(model, chain[0], {**per_device[chain[0]], **rest})
        if len(chain) > 1 and len(found) < len(model.proto.graph.node):
            found = core.query_model(model, f"HETERO:{','.join(chain)}",
                                     {P.DEVICE_PROPERTIES: self._hetero_devices(chain, per_device,
                                                                                rest)})
        return {node: self.name for node in found}

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> CompiledModel:
        """On the primary when it supports every node (one ``query_model``), else as an
        implicit ``HETERO:primary,fallbacks``."""
        chain, per_device, rest = self._split(config)
        core = self.get_core()
        primary = chain[0]
        primary_config = {**per_device[primary], **rest}
        if len(chain) > 1:
            supported = core.query_model(model, primary, primary_config)
            if len(supported) < len(model.proto.graph.node):
                hetero = f"HETERO:{','.join(chain)}"
                hetero_keys = core.get_property("HETERO", P.SUPPORTED_PROPERTIES)
                hetero_config = {k: v for k, v in rest.items()
                                 if hetero_keys.get(k) == "RW" and k != P.DEVICE_PRIORITIES}
                hetero_config[P.DEVICE_PROPERTIES] = self._hetero_devices(chain, per_device,
                                                                          rest)
                try:
                    return core.compile_model(model, hetero, hetero_config)
                except UnsupportedOperationError as exc:  # no plugin runs a node: say CPU
                    raise UnsupportedOperationError(
                        f"{self.name}: {exc}", node=exc.node, op_type=exc.op_type,
                        device=self.name) from exc
        return core.compile_model(model, primary, primary_config)

    @staticmethod
    def _hetero_devices(chain: list[str], per_device: dict[str, dict[str, Any]],
                        rest: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The primary gets the user's config; the fallbacks only their DEVICE_PROPERTIES."""
        return {d: ({**per_device[d], **rest} if k == 0 else per_device[d])
                for k, d in enumerate(chain)}
