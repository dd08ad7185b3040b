"""Core: finds plugins, reads models, compiles them for a device.

Plugins come from three places, in this order of precedence: :meth:`Core.register_plugin`,
the built-in devices (NUMPY, TEMPLATE, the ``CPU`` proxy over them, and the virtual HETERO,
MULTI, AUTO and BATCH), and the ``aioinfer.plugins`` entry-point group (for third-party
packages; resolved once per process and cached). A plugin is instantiated the first time its
device is used, and gets a :class:`CoreView` of its Core (its ``get_core()``), through which a
virtual plugin queries and compiles on the devices it is built from. ``CPU`` is a proxy plugin
(:mod:`aioinfer.plugins.proxy`) over the host-CPU plugins, which it hides from
``available_devices`` (they stay addressable by name).

Device strings go through one parser (:func:`aioinfer.devices.parse_device`): ``NUMPY.1`` is
device ``1`` of NUMPY (passed on as ``DEVICE_ID``), and ``HETERO:A,B`` is the HETERO plugin with
``MULTI_DEVICE_PRIORITIES="A,B"``, as in OpenVINO.
"""

from __future__ import annotations

import functools
import importlib
import threading
import weakref
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from . import compile_cache
from . import properties as P
from .devices import DeviceName, parse_device
from .errors import DeviceNotFoundError, PluginLoadError
from .extensions import ExtensionSet
from .model import Model, load_model
from .plugins.base import CompiledModel, Plugin
from .tensor import RemoteContext

PluginFactory = Callable[[str], Plugin]
PluginSource = Plugin | PluginFactory | str

_BUILTIN: dict[str, str] = {
    "NUMPY": "aioinfer.plugins.numpy:NumpyPlugin",
    "TEMPLATE": "aioinfer.plugins.template:TemplatePlugin",
    "OPENVINO": "aioinfer.plugins.openvino:OpenVinoPlugin",  # extra aioinfer[openvino]
    "ORT": "aioinfer.plugins.ort:OrtPlugin",  # extra aioinfer[onnxruntime]
    "HETERO": "aioinfer.plugins.hetero:HeteroPlugin",
    "CPU": "aioinfer.plugins.proxy:ProxyPlugin",
    "MULTI": "aioinfer.plugins.multi:MultiPlugin",
    "AUTO": "aioinfer.plugins.auto:AutoPlugin",
    "BATCH": "aioinfer.plugins.batch:BatchPlugin",
}


@functools.cache
def _entry_point_plugins() -> dict[str, Any]:
    return {ep.name.upper(): ep for ep in entry_points(group="aioinfer.plugins")}


def _import_object(path: str) -> Any:
    module, _, attr = path.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


class Core:
    """The entry point of the OpenVINO-style API."""

    def __init__(self) -> None:
        self._registered: dict[str, PluginSource] = {}
        self._plugins: dict[str, Plugin] = {}
        self._lock = threading.RLock()
        self._core_properties: dict[str, Any] = {}
        self._extensions = ExtensionSet()
        self._contexts: dict[str, RemoteContext] = {}

    # -- devices -----------------------------------------------------------------------------
    @property
    def available_devices(self) -> list[str]:
        """Device names whose plugin loads and whose hardware is present (virtual devices
        such as HETERO are not listed, as in OpenVINO; they are built over these). Plugins a
        proxy stands for (NUMPY, TEMPLATE behind ``CPU``) are listed as the proxy."""
        return self._devices()[0]

    def _devices(self) -> tuple[list[str], list[str]]:
        """(available devices, the plugins proxies hide)."""
        names = [*self._registered, *_BUILTIN, *_entry_point_plugins()]
        found: dict[str, list[str]] = {}
        hidden: set[str] = set()
        for name in dict.fromkeys(names):
            try:
                plugin = self._plugin(name)
            except PluginLoadError:
                continue
            if plugin.is_available() and not plugin.virtual:
                hidden.update(plugin.hidden_devices())
                ids = plugin.device_ids()
                found[name] = [f"{name}.{i}" for i in ids] if len(ids) > 1 else [name]
        hidden_plugins = {parse_device(d).name for d in hidden}

        def is_hidden(name: str, device: str) -> bool:  # "NUMPY", or "OPENVINO.CPU"
            return device in hidden or (device == name and name in hidden_plugins)

        shown = sorted(d for name, ds in found.items() for d in ds if not is_hidden(name, d))
        return shown, sorted(hidden_plugins & set(found))

    def register_plugin(self, plugin: PluginSource, device_name: str | None = None) -> None:
        """Register a plugin under ``device_name``.

        ``plugin`` is a :class:`Plugin` instance, a factory called with the device name, or an
        import path ``"package.module:Class"``.
        """
        name = device_name or getattr(plugin, "name", "")
        if not name:
            raise PluginLoadError("register_plugin: a device name is required")
        name = name.upper()
        with self._lock:
            self._registered[name] = plugin
            self._plugins.pop(name, None)

    def unload_plugin(self, device_name: str) -> None:
        """Forget the instantiated plugin of a device (it is created again on next use)."""
        with self._lock:
            self._plugins.pop(self._resolve(device_name), None)

    def _resolve(self, device: str) -> str:
        return parse_device(device).name

    def _plugin(self, device: str) -> Plugin:
        name = self._resolve(device)
        with self._lock:
            plugin = self._plugins.get(name)
            if plugin is None:
                plugin = self._plugins[name] = self._load(name)
            return plugin

    def _load(self, name: str) -> Plugin:
        source: Any = self._registered.get(name) or _BUILTIN.get(name)
        if source is None and name in _entry_point_plugins():
            source = _entry_point_plugins()[name]
        if source is None:
            known = sorted({*self._registered, *_BUILTIN, *_entry_point_plugins()})
            raise DeviceNotFoundError(
                f"device {name!r} not found; known devices: {', '.join(known)}", device=name
            )
        try:
            if isinstance(source, Plugin):
                return source
            if isinstance(source, str):
                source = _import_object(source)
            elif hasattr(source, "load") and hasattr(source, "group"):
                source = source.load()
            plugin = source(name)
        except Exception as exc:
            raise PluginLoadError(f"plugin for device {name!r} failed to load: {exc}",
                                  device=name) from exc
        if not isinstance(plugin, Plugin):
            raise PluginLoadError(
                f"plugin for device {name!r} is a {type(plugin).__name__}, not an "
                "aioinfer.plugins.base.Plugin",
                device=name,
            )
        plugin.attach_core(CoreView(self))
        self._extensions.install(plugin)
        return plugin

    def _target(self, device: str | DeviceName, config: Mapping[str, Any] | None
                ) -> tuple[Plugin, dict[str, Any]]:
        """The plugin a device string names and the config it gets: a device id becomes
        ``DEVICE_ID``, a virtual device's targets the plugin's targets property."""
        parsed = parse_device(device)  # type: ignore[arg-type]
        plugin = self._plugin(parsed.name)
        merged = dict(config or {})
        if parsed.id is not None:
            ids = plugin.device_ids()
            if parsed.id not in ids:
                have = (f"{parsed.name}'s devices are {', '.join(ids)}" if ids
                        else f"{parsed.name} has one device, no ids")
                raise DeviceNotFoundError(f"device {str(parsed)!r} not found: {have}",
                                          device=str(parsed))
            merged[P.DEVICE_ID] = parsed.id
        if parsed.targets:
            key = plugin.targets_property
            if key is None:
                raise DeviceNotFoundError(
                    f"device {str(parsed)!r}: {parsed.name} is not a virtual device, it takes "
                    "no device list", device=str(parsed))
            merged[key] = ",".join(str(t) for t in parsed.targets)
        return plugin, merged
    # -- properties --------------------------------------------------------------------------
    def get_property(self, device: str, key: str) -> Any:
        """The value of property ``key`` of ``device``."""
        return self._plugin(device).get_property(key)

    def set_property(
        self, device: str | Mapping[str, Any], properties: Mapping[str, Any] | None = None
    ) -> None:
        """Set properties of ``device`` (``set_property("NUMPY", {...})``)."""
        if isinstance(device, Mapping):
            device = dict(device)
            if P.CACHE_DIR in device:  # the Core's own (compile_cache), not the plugins'
                self._core_properties[P.CACHE_DIR] = compile_cache.check_dir(
                    device.pop(P.CACHE_DIR))
            shown, hidden = self._devices()
            for name in [*hidden, *shown]:  # a proxy's primary is also set through the proxy
                plugin = self._plugin(name)
                supported = plugin.get_property("SUPPORTED_PROPERTIES")
                plugin.set_property({k: v for k, v in device.items() if k in supported})
            self._core_properties.update(device)
            return
        self._plugin(device).set_property(properties or {})

    # -- models ------------------------------------------------------------------------------
    def read_model(self, model: Any) -> Model:
        """Read an ONNX model from a path, bytes or ``onnx.ModelProto``."""
        return self._extensions.prepare(load_model(model))

    def compile_model(
        self, model: Any, device: str = "CPU", config: Mapping[str, Any] | None = None
    ) -> CompiledModel:
        """Compile ``model`` (a :class:`Model`, path, bytes or ModelProto) for ``device``.

        With ``CACHE_DIR`` (in ``config``, or set with ``set_property({"CACHE_DIR": path})``)
        the compile is kept on disk and a later one imports it (:mod:`aioinfer.compile_cache`);
        the compiled model's read-only ``LOADED_FROM_CACHE`` says which happened."""
        return compile_cache.compile_model(self, model, device, config)

    def _compile(self, model: Any, device: str, config: Mapping[str, Any]) -> CompiledModel:
        if not isinstance(model, Model):
            model = self.read_model(model)
        plugin, merged = self._target(device, config)
        return plugin.compile_model(self._extensions.prepare(model, plugin), merged)

    def query_model(
        self, model: Any, device: str, config: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        """Node name -> device, for each node ``device`` can run."""
        if not isinstance(model, Model):
            model = self.read_model(model)
        plugin, merged = self._target(device, config)
        return plugin.query_model(self._extensions.prepare(model, plugin), merged)

    def import_model(self, blob: bytes, device: str, config: Mapping[str, Any] | None = None
                     ) -> CompiledModel:
        """A compiled model from ``compiled.export_model()`` bytes, on ``device``."""
        plugin, merged = self._target(device, config)
        return plugin.import_model(blob, merged)

    # -- extensions and remote contexts ------------------------------------------------------
    def add_extension(self, extension: Any) -> None:
        """Add custom operations (:class:`aioinfer.Op`): an Op subclass, a list of them, an
        import path ``"package.module:attr"``, an entry point, or the name of one in the
        ``aioinfer.extensions`` group.

        They are this Core's only: its plugins that run custom operations (NUMPY, TEMPLATE)
        get them, models it reads or compiles get their custom nodes' output types from
        ``Op.infer_shape``, and a device that does not run them gets their decompositions
        (``Op.function()``). See :mod:`aioinfer.extensions`.
        """
        ops = self._extensions.add(extension)
        with self._lock:
            plugins = list(self._plugins.values())
        for plugin in plugins:
            self._extensions.install(plugin, ops)

    def create_context(self, device: str, params: Mapping[str, Any] | None = None
                       ) -> RemoteContext:
        """A new remote context of ``device`` (its tensors live in the device's memory)."""
        return self._plugin(device).create_context(dict(params or {}))

    def get_default_context(self, device: str) -> RemoteContext:
        """The device's default remote context (made once per device by this Core)."""
        name = self._resolve(device)
        with self._lock:
            context = self._contexts.get(name)
        if context is None:
            context = self.create_context(device)
            with self._lock:
                context = self._contexts.setdefault(name, context)
        return context

    def __repr__(self) -> str:
        return f"<Core devices={self.available_devices}>"


class CoreView:
    """The narrow view of a :class:`Core` a plugin gets (OpenVINO's ``ICore``, returned by
    ``Plugin.get_core()``): what a virtual device needs to build on other devices.

    It holds its Core weakly (a Core owns its plugins, not the other way round).
    """

    def __init__(self, core: Core) -> None:
        self._core = weakref.ref(core)

    def _get(self) -> Core:
        core = self._core()
        if core is None:
            raise PluginLoadError("the Core of this plugin has been garbage collected")
        return core

    @property
    def available_devices(self) -> list[str]:
        return self._get().available_devices

    def get_property(self, device: str, key: str) -> Any:
        return self._get().get_property(device, key)

    def query_model(self, model: Model, device: str,
                    config: Mapping[str, Any] | None = None) -> dict[str, str]:
        return self._get().query_model(model, device, config)

    def compile_model(self, model: Model, device: str,
                      config: Mapping[str, Any] | None = None) -> CompiledModel:
        return compile_cache.compile_model(self._get(), model, device, config, outer=False)

    def read_model(self, model: Any) -> Model:
        """``Core.read_model`` (a virtual device's import reads the model it stored)."""
        return self._get().read_model(model)

    def import_model(self, blob: bytes, device: str,
                     config: Mapping[str, Any] | None = None) -> CompiledModel:
        """``Core.import_model`` (a virtual device's import imports its parts)."""
        return self._get().import_model(blob, device, config)

    def plugin(self, device: str) -> Plugin:
        """The plugin serving ``device`` (for its streams and data transfers)."""
        return self._get()._plugin(device)
