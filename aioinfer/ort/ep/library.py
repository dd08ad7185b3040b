"""Registering plugin EP libraries, listing EP devices, selection policies.

``register_execution_provider_library(name, module_or_path)`` imports a Python module (a
dotted name, or the path of a ``.py`` file), calls its ``create_ep_factories`` and keeps the
factories; each factory's EP becomes a provider name (listed by ``get_available_providers``,
unlike onnxruntime's microsoft/onnxruntime#27832) and an aioinfer device, registered in every
Core a session uses (:class:`~aioinfer.ort.ep.plugin.EpPlugin`). ``get_ep_devices()`` lists
the CPU EP's device and every registered factory's supported devices.

Selection policies follow onnxruntime's ``provider_policy_context.cc``: ``PREFER_CPU`` and
``DEFAULT`` order CPU devices first; ``PREFER_GPU`` and ``MAX_PERFORMANCE`` GPUs, then NPUs;
``PREFER_NPU``, ``MAX_EFFICIENCY`` and ``MIN_OVERALL_POWER`` NPUs, then GPUs; a delegate
picks itself. Selecting nothing is an error.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import re
import sys
import threading
import types
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import DeviceNotFoundError, PluginLoadError
from ..options import OrtExecutionProviderDevicePolicy as Policy
from .api import EpApi, EpDevice, EpFactory, HardwareDevice, OrtHardwareDeviceType

if TYPE_CHECKING:
    from ...core import Core
    from .plugin import EpPlugin

CPU_EP = "CPUExecutionProvider"


@dataclass
class Library:
    name: str
    module: types.ModuleType
    factories: list[EpFactory]


_LOCK = threading.RLock()
_LIBRARIES: dict[str, Library] = {}
_CORES: weakref.WeakSet[Core] = weakref.WeakSet()


def host_devices() -> list[HardwareDevice]:
    """The hardware devices of this machine aioinfer can see (the host CPU)."""
    vendor, vendor_id = _cpu_vendor()
    return [HardwareDevice(OrtHardwareDeviceType.CPU, vendor, vendor_id, 0,
                           {"arch": platform.machine()})]


def _cpu_vendor() -> tuple[str, int]:
    text = ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read(4096)
    except OSError:
        pass
    if "GenuineIntel" in text:
        return "Intel", 0x8086
    if "AuthenticAMD" in text:
        return "AMD", 0x1022
    return platform.processor() or platform.machine(), 0


def device_name(ep_name: str) -> str:
    """The aioinfer device an EP's models compile on (``ExampleEP`` -> ``EXAMPLEEP``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", ep_name).upper()


def _import(module_or_path: str | os.PathLike[str] | types.ModuleType) -> types.ModuleType:
    if isinstance(module_or_path, types.ModuleType):
        return module_or_path
    text = os.fspath(module_or_path)
    if text.endswith(".py") or os.sep in text:
        if not os.path.isfile(text):
            raise PluginLoadError(f"EP library {text!r} does not exist")
        name = f"aioinfer_ep_library_{abs(hash(os.path.realpath(text)))}"
        spec = importlib.util.spec_from_file_location(name, text)
        if spec is None or spec.loader is None:
            raise PluginLoadError(f"EP library {text!r} is not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(text)


def register_execution_provider_library(registration_name: str,
                                        module_or_path: str | os.PathLike[str] | types.ModuleType
                                        ) -> None:
    """Load a plugin EP library (a Python module exporting ``create_ep_factories`` and
    ``release_ep_factory``) under ``registration_name``. C libraries (onnxruntime's OrtEpApi)
    cannot be loaded here."""
    with _LOCK:
        if registration_name in _LIBRARIES:
            raise PluginLoadError(f"an EP library is already registered as "
                                  f"{registration_name!r}", device=registration_name)
        try:
            module = _import(module_or_path)
        except PluginLoadError:
            raise
        except Exception as exc:
            raise PluginLoadError(f"EP library {module_or_path!r} failed to import: {exc}",
                                  device=registration_name) from exc
        create = getattr(module, "create_ep_factories", None)
        if not callable(create) or not callable(getattr(module, "release_ep_factory", None)):
            raise PluginLoadError(
                f"EP library {module_or_path!r} must export create_ep_factories(registration_"
                "name, api, max_factories) and release_ep_factory(factory)",
                device=registration_name)
        factories = list(create(registration_name, EpApi(), 8))
        names = [f.get_name() for f in factories]
        clash = [n for n in names if n in registered_names() or n == CPU_EP]
        if clash or len(set(names)) != len(names):
            for factory in factories:
                module.release_ep_factory(factory)
            raise PluginLoadError(f"EP library {registration_name!r}: EP name(s) {clash or names}"
                                  " already in use", device=registration_name)
        _LIBRARIES[registration_name] = Library(registration_name, module, factories)


def unregister_execution_provider_library(registration_name: str) -> None:
    """Release a library's factories; its EPs are no longer providers."""
    with _LOCK:
        library = _LIBRARIES.pop(registration_name, None)
        if library is None:
            raise PluginLoadError(f"no EP library is registered as {registration_name!r}",
                                  device=registration_name)
        for factory in library.factories:
            name = device_name(factory.get_name())
            for core in list(_CORES):
                with core._lock:  # the Core keeps no public unregister
                    core._registered.pop(name, None)
                    core._plugins.pop(name, None)
            library.module.release_ep_factory(factory)


def factories() -> list[EpFactory]:
    with _LOCK:
        return [f for lib in _LIBRARIES.values() for f in lib.factories]


def registered_names() -> list[str]:
    return [f.get_name() for f in factories()]


def registered_providers(core: Core | None = None) -> dict[str, str]:
    """EP name -> aioinfer device, the plugins registered in ``core`` if given."""
    out = {}
    for factory in factories():
        name = factory.get_name()
        out[name] = device_name(name)
        if core is not None:
            _ensure_plugin(core, factory)
    return out


def _ensure_plugin(core: Core, factory: EpFactory) -> None:
    from .plugin import EpPlugin

    name = device_name(factory.get_name())
    with core._lock:
        if name in core._registered:
            return
    plugin: EpPlugin = EpPlugin(name, factory, _supported(factory))
    core.register_plugin(plugin, name)
    _CORES.add(core)


def _supported(factory: EpFactory) -> list[EpDevice]:
    return list(factory.get_supported_devices(host_devices()))


def cpu_ep_device() -> EpDevice:
    from ... import __version__

    return EpDevice(CPU_EP, "aioinfer", {"version": __version__}, {}, host_devices()[0])


def get_ep_devices() -> list[EpDevice]:
    """Every (EP, device) pair: the CPU EP's, then each registered factory's."""
    devices = [cpu_ep_device()]
    for factory in factories():
        devices.extend(_supported(factory))
    return devices


_ORDER = {
    Policy.DEFAULT: (OrtHardwareDeviceType.CPU,),
    Policy.PREFER_CPU: (OrtHardwareDeviceType.CPU,),
    Policy.PREFER_GPU: (OrtHardwareDeviceType.GPU, OrtHardwareDeviceType.NPU),
    Policy.MAX_PERFORMANCE: (OrtHardwareDeviceType.GPU, OrtHardwareDeviceType.NPU),
    Policy.PREFER_NPU: (OrtHardwareDeviceType.NPU, OrtHardwareDeviceType.GPU),
    Policy.MAX_EFFICIENCY: (OrtHardwareDeviceType.NPU, OrtHardwareDeviceType.GPU),
    Policy.MIN_OVERALL_POWER: (OrtHardwareDeviceType.NPU, OrtHardwareDeviceType.GPU),
}


def select_devices(policy: Policy | None, delegate: Any,
                   model_meta: Mapping[str, Any]) -> list[EpDevice]:
    """The EP devices a policy (or delegate) picks, in priority order. The CPU EP is always
    the fallback after them, as in onnxruntime."""
    devices = get_ep_devices()
    if delegate is not None:
        chosen: Sequence[EpDevice] = delegate(devices, dict(model_meta), {}, len(devices))
        chosen = list(chosen or [])
        unknown = [d for d in chosen if d not in devices]
        if unknown:
            raise DeviceNotFoundError(f"the selection delegate returned devices that "
                                      f"get_ep_devices() does not list: {unknown}")
    else:
        first = _ORDER[policy or Policy.DEFAULT]
        rank = {kind: k for k, kind in enumerate(first)}
        # plugin EPs before the CPU EP for the same device type, as onnxruntime orders them
        chosen = sorted((d for d in devices if d.device.type in rank),
                        key=lambda d: (rank[d.device.type], d.ep_name == CPU_EP))
        if not chosen and policy not in (None, Policy.DEFAULT, Policy.PREFER_CPU):
            chosen = [d for d in devices if d.ep_name == CPU_EP]
    if not chosen:
        raise DeviceNotFoundError(
            f"EP selection ({'delegate' if delegate is not None else policy}) chose no device; "
            f"EP devices: {[(d.ep_name, d.device.type.name) for d in devices]}")
    return chosen
