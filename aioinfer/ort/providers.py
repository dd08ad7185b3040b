"""Execution providers -> an aioinfer device string and its config.

``providers`` and ``provider_options`` are taken as onnxruntime takes them (names, or
``(name, options)`` pairs, with a parallel list of option dicts). Each provider names a device:

- ``CPUExecutionProvider`` -> ``CPU`` (the proxy over the host engines);
- ``OpenVINOExecutionProvider`` -> its ``device_type`` (:mod:`aioinfer.ort.openvino_ep`);
- a plugin EP registered with :func:`aioinfer.ort.register_execution_provider_library` -> its
  device (:mod:`aioinfer.ort.ep`).

As in onnxruntime, the providers form a priority list with the CPU EP as the last fallback
(unless ``session.disable_cpu_ep_fallback`` is ``1``): a model the first device runs whole is
compiled on it alone; otherwise the devices become ``HETERO:first,...,CPU`` and each node goes
to the first device that claims it. A provider that is not available here is an error naming
those that are: aioinfer never silently runs elsewhere than asked.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import properties as P
from ..devices import parse_device
from ..errors import DeviceNotFoundError, InvalidPropertyValueError, UnknownPropertyError
from .openvino_ep import PROVIDER as OPENVINO
from .openvino_ep import OpenVinoOptions, parse_options

if TYPE_CHECKING:
    from ..core import Core
    from ..model import Model

CPU = "CPUExecutionProvider"
ALL_PROVIDERS = (
    "TensorrtExecutionProvider", "CUDAExecutionProvider", "MIGraphXExecutionProvider",
    "ROCMExecutionProvider", OPENVINO, "DnnlExecutionProvider", "VitisAIExecutionProvider",
    "QNNExecutionProvider", "NnapiExecutionProvider", "VSINPUExecutionProvider",
    "JsExecutionProvider", "CoreMLExecutionProvider", "ArmNNExecutionProvider",
    "ACLExecutionProvider", "DmlExecutionProvider", "RknpuExecutionProvider",
    "WebNNExecutionProvider", "WebGpuExecutionProvider", "XnnpackExecutionProvider",
    "CANNExecutionProvider", "AzureExecutionProvider", CPU,
)
CPU_OPTIONS = ("use_arena",)


@dataclass
class ProviderChoice:
    """One provider of a session, resolved to a device."""

    name: str
    device: str
    options: dict[str, str]
    config: dict[str, Any] = field(default_factory=dict)
    openvino: OpenVinoOptions | None = None


def normalize(providers: Sequence[Any] | None,
              provider_options: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, dict]]:
    """onnxruntime's two argument forms -> ``[(name, options)]``."""
    items = list(providers or [])
    if provider_options is not None and len(provider_options) != len(items):
        raise InvalidPropertyValueError(
            f"provider_options has {len(provider_options)} entries for {len(items)} providers; "
            "give one dict per provider", key="provider_options")
    out: list[tuple[str, dict]] = []
    for index, item in enumerate(items):
        if isinstance(item, (tuple, list)):
            if len(item) != 2 or not isinstance(item[1], Mapping):
                raise InvalidPropertyValueError(
                    f"providers[{index}]: expected a name or (name, options dict), got {item!r}",
                    key="providers")
            name, options = str(item[0]), dict(item[1])
            if provider_options is not None:
                raise InvalidPropertyValueError(
                    "give provider options either in (name, options) pairs or in "
                    "provider_options, not both", key="provider_options")
        else:
            name = str(item)
            options = dict(provider_options[index]) if provider_options is not None else {}
        if any(n == name for n, _ in out):
            raise InvalidPropertyValueError(f"provider {name!r} is listed twice",
                                            key="providers")
        out.append((name, options))
    return out


def present_devices(core: Core) -> list[str]:
    """Device names usable here: the available ones, the plugins a proxy hides, and the base
    name of a multi-device plugin (``CPU`` beside ``CPU.0``)."""
    devices = getattr(core, "_devices", None)  # (shown, hidden by a proxy) where the Core has it
    shown, hidden = devices() if devices is not None else (core.available_devices, [])
    bases = [parse_device(d).name for d in shown]
    return sorted(set(shown) | set(hidden) | set(bases))


def check_present(core: Core, device: str, option: str = "device_type") -> None:
    """Raise :class:`DeviceNotFoundError` naming the present devices if ``device`` (or one
    of a virtual device's targets) is not present."""
    parsed = parse_device(device)
    wanted = [t for t in parsed.targets] if parsed.targets else [parsed]
    present = present_devices(core)
    for target in wanted:
        if target.base not in present and target.name not in present:
            raise DeviceNotFoundError(
                f"{option} {device!r}: device {target.base} is not present; present devices: "
                f"{', '.join(present)}", device=target.base)
        if target.id is not None and target.base not in present:
            ids = core._plugin(target.name).device_ids()
            if target.id not in ids:
                raise DeviceNotFoundError(
                    f"{option} {device!r}: {target.name} has no device {target.id}; present "
                    f"devices: {', '.join(present)}", device=target.base)


def resolve(core: Core, name: str, options: dict[str, Any],
            plugin_eps: Mapping[str, str]) -> ProviderChoice:
    """One provider -> its device (checked present) and config."""
    if name == CPU:
        for key in options:
            if key not in CPU_OPTIONS:
                raise UnknownPropertyError(
                    f"{CPU}: unknown option {key!r}; options are {', '.join(CPU_OPTIONS)}",
                    key=str(key), device=CPU)
        return ProviderChoice(CPU, "CPU", {k: str(v) for k, v in options.items()})
    if name == OPENVINO:
        parsed = parse_options(options)
        check_present(core, parsed.device_type)
        return ProviderChoice(OPENVINO, parsed.device_type, dict(parsed.given),
                              openvino=parsed)
    if name in plugin_eps:
        device = plugin_eps[name]
        return ProviderChoice(name, device, {k: str(v) for k, v in options.items()},
                              config={f"ep.{name.lower()}.{k}": str(v)
                                      for k, v in options.items()})
    available = available_providers(plugin_eps)
    if name in ALL_PROVIDERS:
        raise DeviceNotFoundError(
            f"execution provider {name!r} is not available here; available providers: "
            f"{', '.join(available)}", device=name)
    raise DeviceNotFoundError(
        f"unknown execution provider {name!r}; available providers: {', '.join(available)}",
        device=name)


def available_providers(plugin_eps: Mapping[str, str]) -> list[str]:
    """onnxruntime's ``get_available_providers()``: registered plugin EPs first."""
    return [*plugin_eps, OPENVINO, CPU]


def supported(core: Core, device: str) -> Mapping[str, str]:
    have: Mapping[str, str] = core.get_property(device, P.SUPPORTED_PROPERTIES)
    return have


def device_config(core: Core, device: str, wanted: Mapping[str, Any], origin: str
                  ) -> dict[str, Any]:
    """The properties in ``wanted`` that ``device`` (or, for a virtual device, its targets)
    supports. A key nothing supports is dropped with a warning naming ``origin``."""
    have = supported(core, device)
    config = {k: v for k, v in wanted.items() if k in have}
    rest = {k: v for k, v in wanted.items() if k not in have}
    parsed = parse_device(device)
    if rest and parsed.targets:
        per_device: dict[str, dict[str, Any]] = {}
        for target in parsed.targets:
            theirs = supported(core, str(target))
            per_device[str(target)] = {k: v for k, v in rest.items() if k in theirs}
        taken = {k for d in per_device.values() for k in d}
        rest = {k: v for k, v in rest.items() if k not in taken}
        if any(per_device.values()):
            config[P.DEVICE_PROPERTIES] = {d: c for d, c in per_device.items() if c}
    for key in rest:
        warnings.warn(f"{origin}: {key} is not a property of device {device}; ignored",
                      RuntimeWarning, stacklevel=4)
    return config


def load_config(core: Core, device: str, config: dict[str, Any],
                table: Mapping[str, Mapping[str, Any]]) -> None:
    """Apply ``load_config`` entries (``{"DEVICE": {"PROPERTY": "VALUE"}}``) to ``config``:
    an unknown property warns and is ignored, a read-only one warns and is skipped, an invalid
    value fails when the device compiles (the error names the property)."""
    parsed = parse_device(device)
    targets = {str(t) for t in parsed.targets}
    for name, values in table.items():
        if name != str(parsed) and name != parsed.name and name not in targets:
            warnings.warn(f"load_config: device {name} is not used by this session "
                          f"({device}); its entries are ignored", RuntimeWarning, stacklevel=4)
            continue
        have = supported(core, name)
        kept = {}
        for key, value in values.items():
            if key not in have:
                warnings.warn(f"load_config: {name} has no property {key!r}; ignored",
                              RuntimeWarning, stacklevel=4)
            elif have[key] != "RW":
                warnings.warn(f"load_config: {name}.{key} is read-only; skipped",
                              RuntimeWarning, stacklevel=4)
            else:
                kept[key] = value
        if name in targets:
            per = config.setdefault(P.DEVICE_PROPERTIES, {})
            per.setdefault(name, {}).update(kept)
        else:
            config.update(kept)


def with_fallback(core: Core, model: Model, devices: list[tuple[str, dict[str, Any]]],
                  fallback: bool) -> tuple[str, dict[str, Any]]:
    """The device and config for providers in priority order, CPU last when ``fallback``."""
    first, config = devices[0]
    chain = list(dict.fromkeys(d for d, _ in devices))
    if fallback and "CPU" not in chain:
        chain.append("CPU")
    if len(chain) == 1 or parse_device(first).targets:
        return first, config
    claimed = core.query_model(model, first, config)
    if len(claimed) == len(model.proto.graph.node):
        return first, config
    per_device = {d: c for d, c in devices if c}
    hetero = f"HETERO:{','.join(chain)}"
    return hetero, {P.DEVICE_PROPERTIES: per_device} if per_device else {}
