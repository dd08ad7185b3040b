"""Property keys, their value types, read-only/read-write access and validation.

Keys follow OpenVINO's names so that code written for it reads naturally here. A plugin or a
compiled model holds a :class:`PropertySet`: a fixed table of :class:`Property` specs with
current values. Reading an unknown key raises :class:`~aioinfer.errors.UnknownPropertyError`;
setting a read-only one :class:`~aioinfer.errors.ReadOnlyPropertyError`; a bad value
:class:`~aioinfer.errors.InvalidPropertyValueError`. Every error names the key and device.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidPropertyValueError, ReadOnlyPropertyError, UnknownPropertyError

# Keys (strings, so user code may also spell them out).
SUPPORTED_PROPERTIES = "SUPPORTED_PROPERTIES"
AVAILABLE_DEVICES = "AVAILABLE_DEVICES"
FULL_DEVICE_NAME = "FULL_DEVICE_NAME"
DEVICE_UUID = "DEVICE_UUID"
OPTIMIZATION_CAPABILITIES = "OPTIMIZATION_CAPABILITIES"
EXECUTION_DEVICES = "EXECUTION_DEVICES"
OPTIMAL_NUMBER_OF_INFER_REQUESTS = "OPTIMAL_NUMBER_OF_INFER_REQUESTS"
PERFORMANCE_HINT = "PERFORMANCE_HINT"
PERFORMANCE_HINT_NUM_REQUESTS = "PERFORMANCE_HINT_NUM_REQUESTS"
NUM_STREAMS = "NUM_STREAMS"
INFERENCE_NUM_THREADS = "INFERENCE_NUM_THREADS"
INFERENCE_PRECISION_HINT = "INFERENCE_PRECISION_HINT"
PERF_COUNT = "PERF_COUNT"
ENABLE_CPU_PINNING = "ENABLE_CPU_PINNING"
MODEL_NAME = "MODEL_NAME"
CACHE_DIR = "CACHE_DIR"
LOADED_FROM_CACHE = "LOADED_FROM_CACHE"  # read-only, on a compiled model: imported from CACHE_DIR
DEVICE_ID = "DEVICE_ID"
DEVICE_PRIORITIES = "MULTI_DEVICE_PRIORITIES"  # OpenVINO's ov::device::priorities
DEVICE_PROPERTIES = "DEVICE_PROPERTIES"  # {device: {key: value}} for a virtual device's targets
AFFINITY = "AFFINITY"  # HETERO: {node name: device} overrides
HETERO_NUMBER_OF_SUBMODELS = "HETERO_NUMBER_OF_SUBMODELS"
# MULTI / AUTO (OpenVINO's names)
ENABLE_STARTUP_FALLBACK = "ENABLE_STARTUP_FALLBACK"
ENABLE_RUNTIME_FALLBACK = "ENABLE_RUNTIME_FALLBACK"
MODEL_PRIORITY = "MODEL_PRIORITY"  # ov::hint::model_priority: LOW, MEDIUM, HIGH, DEFAULT
SCHEDULE_POLICY = "SCHEDULE_POLICY"  # EARLIEST_FINISH (default) or DEVICE_PRIORITY
# BATCH
AUTO_BATCH_TIMEOUT = "AUTO_BATCH_TIMEOUT"  # ms a request waits for its batch to fill
OPTIMAL_BATCH_SIZE = "OPTIMAL_BATCH_SIZE"
BATCH_SIZE = "BATCH_SIZE"  # the batch a BATCH compiled model runs (1: unbatched)
BATCH_UNBATCHED_REASON = "BATCH_UNBATCHED_REASON"  # why a model runs unbatched ("" if batched)
# The proxy (OpenVINO's src/plugins/proxy)
PROXY_ALIAS_FOR = "PROXY_ALIAS_FOR"  # the hidden plugins a proxy stands for, in priority order


class ModelPriority(str, enum.Enum):
    """Values of ``MODEL_PRIORITY`` (``DEFAULT`` is ``MEDIUM``)."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    DEFAULT = "DEFAULT"

    @property
    def rank(self) -> int:
        """Smaller runs first: HIGH 0, MEDIUM and DEFAULT 1, LOW 2."""
        return {"HIGH": 0, "MEDIUM": 1, "DEFAULT": 1, "LOW": 2}[self.value]

    def __str__(self) -> str:
        return self.value


class PerformanceMode(str, enum.Enum):
    """Values of ``PERFORMANCE_HINT``."""

    LATENCY = "LATENCY"
    THROUGHPUT = "THROUGHPUT"
    CUMULATIVE_THROUGHPUT = "CUMULATIVE_THROUGHPUT"

    def __str__(self) -> str:
        return self.value


Validator = Callable[[Any], Any]


@dataclass(frozen=True)
class Property:
    """The spec of one property: key, whether it can be set, how values are checked."""

    key: str
    doc: str
    mutable: bool = True
    validate: Validator | None = None
    default: Any = None
    getter: Callable[[], Any] | None = None  # computed read-only value

    def check(self, value: Any, device: str | None) -> Any:
        if self.validate is None:
            return value
        try:
            return self.validate(value)
        except (TypeError, ValueError) as exc:
            raise InvalidPropertyValueError(
                f"{device or 'property'}: invalid value {value!r} for {self.key}: {exc}",
                key=self.key,
                device=device,
            ) from None


def positive_int(value: Any) -> int:
    """Accept ints >= 1 (also as strings, as OpenVINO config files do)."""
    number = int(value)
    if number < 1 or (isinstance(value, float) and value != number):
        raise ValueError("expected an integer >= 1")
    return number


def non_negative_int(value: Any) -> int:
    number = int(value)
    if number < 0 or (isinstance(value, float) and value != number):
        raise ValueError("expected an integer >= 0")
    return number


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).upper()
    if text in ("YES", "TRUE", "1", "ON"):
        return True
    if text in ("NO", "FALSE", "0", "OFF"):
        return False
    raise ValueError("expected a boolean (True/False or YES/NO)")


def performance_mode(value: Any) -> PerformanceMode:
    try:
        return PerformanceMode(str(value).upper())
    except ValueError:
        names = ", ".join(m.value for m in PerformanceMode)
        raise ValueError(f"expected one of {names}") from None


def model_priority(value: Any) -> ModelPriority:
    try:
        return ModelPriority(str(value).upper())
    except ValueError:
        names = ", ".join(m.value for m in ModelPriority)
        raise ValueError(f"expected one of {names}") from None


def streams(value: Any) -> int:
    """NUM_STREAMS: a count, or AUTO (0: derived from the performance hint)."""
    if str(value).upper() == "AUTO":
        return 0
    return non_negative_int(value)


def precision(value: Any) -> str:
    text = str(value).lower()
    aliases = {"fp32": "f32", "float32": "f32", "fp16": "f16", "float16": "f16",
               "bfloat16": "bf16"}
    text = aliases.get(text, text)
    if text not in ("f32", "f16", "bf16"):
        raise ValueError("expected f32, f16 or bf16")
    return text


def host_cores() -> int:
    """CPUs this process may run on."""
    import os

    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_HOST_UUID: str | None = None


def host_cpu_uuid() -> str:
    """The ``DEVICE_UUID`` every host-CPU plugin reports (NUMPY, TEMPLATE, the engines on the
    CPU), so that the ``CPU`` proxy groups them as one device: a name-based UUID of this
    machine (``/etc/machine-id``, else the MAC address) and its processor."""
    global _HOST_UUID
    if _HOST_UUID is None:
        import platform
        import uuid

        try:
            with open("/etc/machine-id", encoding="ascii") as f:
                machine = f.read().strip()
        except OSError:
            machine = ""
        machine = machine or f"{uuid.getnode():012x}"
        _HOST_UUID = str(uuid.uuid5(uuid.NAMESPACE_OID, f"aioinfer-host-cpu:{machine}:"
                                    f"{platform.machine()}:{platform.processor()}"))
    return _HOST_UUID


def resolve_streams(hint: PerformanceMode, streams: int, num_requests: int = 0) -> int:
    """Streams from NUM_STREAMS, or from the hint when it is 0 (AUTO): LATENCY one, the
    throughput hints one per core (at most PERFORMANCE_HINT_NUM_REQUESTS when that is set)."""
    if streams:
        return streams
    if hint is PerformanceMode.LATENCY:
        return 1
    count = host_cores()
    return min(count, num_requests) if num_requests else count


class PropertySet:
    """Current property values of one object (plugin or compiled model), checked by spec."""

    def __init__(self, specs: Iterable[Property], device: str, **values: Any) -> None:
        self._specs = {spec.key: spec for spec in specs}
        self._device = device
        self._values = {k: s.default for k, s in self._specs.items() if s.getter is None}
        for key, value in values.items():
            self._values[key] = self._spec(key).check(value, device)

    def _spec(self, key: str) -> Property:
        key = str(key)
        if key == SUPPORTED_PROPERTIES:
            return Property(SUPPORTED_PROPERTIES, "keys of this object", mutable=False)
        try:
            return self._specs[key]
        except KeyError:
            raise UnknownPropertyError(
                f"{self._device}: unsupported property {key!r}; supported: "
                f"{', '.join(sorted(self._specs))}",
                key=key,
                device=self._device,
            ) from None

    def get(self, key: str) -> Any:
        """The value of ``key``."""
        spec = self._spec(key)
        if spec.key == SUPPORTED_PROPERTIES:
            return self.supported()
        if spec.getter is not None:
            return spec.getter()
        return self._values[spec.key]

    def set(self, values: Mapping[str, Any]) -> None:
        """Validate every value first, then apply them all (all or nothing)."""
        checked = {}
        for key, value in values.items():
            spec = self._spec(key)
            if not spec.mutable:
                raise ReadOnlyPropertyError(
                    f"{self._device}: property {spec.key} is read-only",
                    key=spec.key,
                    device=self._device,
                )
            checked[spec.key] = spec.check(value, self._device)
        self._values.update(checked)

    def add(self, spec: Property) -> None:
        """One more property, learnt after the plugin made this set (the Core's read-only
        ``LOADED_FROM_CACHE``); a key the set has already keeps its own spec."""
        if spec.key not in self._specs:
            self._specs[spec.key] = spec
            if spec.getter is None:
                self._values[spec.key] = spec.default

    def supported(self) -> dict[str, str]:
        """Every key with ``"RO"`` or ``"RW"``."""
        return {k: ("RW" if s.mutable else "RO") for k, s in self._specs.items()}

    def as_dict(self) -> dict[str, Any]:
        return {k: self.get(k) for k in self._specs}
