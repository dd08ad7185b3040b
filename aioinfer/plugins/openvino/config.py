"""The OPENVINO device's properties and their translation into an OpenVINO compile config.

aioinfer's keys are OpenVINO's names, so most values pass straight through. Two differ on
purpose:

- ``INFERENCE_PRECISION_HINT`` is ``f32`` unless set: it is always passed to OpenVINO
  explicitly, because OpenVINO itself runs f32 models in bf16 on CPUs that have bf16 units
  (AVX512-BF16, AMX), which changes results at the 1e-2 level.
- ``NUM_STREAMS`` 0 and ``INFERENCE_NUM_THREADS`` 0 mean "OpenVINO decides" (from the hint)
  and are then not passed.

``OPENVINO_PROPERTIES`` (``{key: value}``) passes any other OpenVINO property verbatim.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ... import properties as P
from ...properties import Property, PropertySet

OPENVINO_PROPERTIES = "OPENVINO_PROPERTIES"
"""Extra OpenVINO compile properties, ``{key: value}``, passed verbatim."""

# Keys that shape the engine's compiled model: read-only once compiled.
FIXED_AT_COMPILE = (P.DEVICE_ID, P.PERFORMANCE_HINT, P.NUM_STREAMS,
                    P.PERFORMANCE_HINT_NUM_REQUESTS, P.INFERENCE_NUM_THREADS,
                    P.INFERENCE_PRECISION_HINT, P.PERF_COUNT, P.ENABLE_CPU_PINNING,
                    P.CACHE_DIR, OPENVINO_PROPERTIES)


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping {OpenVINO property: value}")
    return {str(k): v for k, v in value.items()}


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else P.boolean(value)


def device_specs(name: str, engine: Any, check_device: Callable[[Any], str]) -> list[Property]:
    """The plugin's properties. ``engine`` answers OpenVINO facts for the current
    ``DEVICE_ID`` (see :class:`~.plugin.OpenVinoPlugin`)."""
    return [
        Property(P.FULL_DEVICE_NAME, "the OpenVINO device and precision", mutable=False,
                 getter=engine.full_name),
        Property(P.OPTIMIZATION_CAPABILITIES, "what the OpenVINO device can do",
                 mutable=False, getter=engine.capabilities),
        Property(P.AVAILABLE_DEVICES, "OpenVINO's devices (DEVICE_ID values)", mutable=False,
                 getter=engine.devices),
        Property(P.DEVICE_UUID, "the OpenVINO device's UUID (host CPU: the host's)",
                 mutable=False, getter=engine.uuid),
        Property(P.DEVICE_ID, "the OpenVINO device: CPU, GPU.0, NPU...",
                 validate=check_device, default=engine.default_device()),
        Property(P.PERFORMANCE_HINT, "LATENCY, THROUGHPUT or CUMULATIVE_THROUGHPUT",
                 validate=P.performance_mode, default=P.PerformanceMode.LATENCY),
        Property(P.NUM_STREAMS, "OpenVINO streams (0/AUTO = from the hint)",
                 validate=P.streams, default=0),
        Property(P.PERFORMANCE_HINT_NUM_REQUESTS, "requests the app keeps in flight (0 = any)",
                 validate=P.non_negative_int, default=0),
        Property(P.INFERENCE_NUM_THREADS, "OpenVINO's compute threads (0 = its choice)",
                 validate=P.non_negative_int, default=0),
        Property(P.INFERENCE_PRECISION_HINT, "f32 (default; OpenVINO's own default is bf16 "
                 "where the CPU has it), bf16 or f16", validate=P.precision, default="f32"),
        Property(P.PERF_COUNT, "OpenVINO's per-op profiling", validate=P.boolean,
                 default=False),
        Property(P.ENABLE_CPU_PINNING, "pin OpenVINO's stream threads to cores (None: "
                 "OpenVINO's default)", validate=_optional_bool, default=None),
        Property(P.CACHE_DIR, "OpenVINO's model cache folder ('' = none)", validate=str,
                 default=""),
        Property(OPENVINO_PROPERTIES, "other OpenVINO properties {key: value}",
                 validate=_mapping, default={}),
    ]


def settable(props: PropertySet) -> dict[str, Any]:
    """The read-write values of ``props``."""
    return {k: props.get(k) for k, rw in props.supported().items() if rw == "RW"}


def compile_config(props: PropertySet, supported: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenVINO compile config for ``props``; ``supported`` is the OpenVINO device's
    ``SUPPORTED_PROPERTIES`` (keys it does not have are not passed)."""
    import openvino as ov

    precision = {"f32": ov.Type.f32, "f16": ov.Type.f16, "bf16": ov.Type.bf16}
    config: dict[str, Any] = {
        P.PERFORMANCE_HINT: str(props.get(P.PERFORMANCE_HINT)),
        P.INFERENCE_PRECISION_HINT: precision[props.get(P.INFERENCE_PRECISION_HINT)],
        P.PERF_COUNT: bool(props.get(P.PERF_COUNT)),
    }
    if props.get(P.NUM_STREAMS):
        config[P.NUM_STREAMS] = int(props.get(P.NUM_STREAMS))
    if props.get(P.PERFORMANCE_HINT_NUM_REQUESTS):
        config[P.PERFORMANCE_HINT_NUM_REQUESTS] = int(props.get(P.PERFORMANCE_HINT_NUM_REQUESTS))
    if props.get(P.INFERENCE_NUM_THREADS):
        config[P.INFERENCE_NUM_THREADS] = int(props.get(P.INFERENCE_NUM_THREADS))
    if props.get(P.ENABLE_CPU_PINNING) is not None:
        config[P.ENABLE_CPU_PINNING] = bool(props.get(P.ENABLE_CPU_PINNING))
    if props.get(P.CACHE_DIR):
        config[P.CACHE_DIR] = props.get(P.CACHE_DIR)
    config = {k: v for k, v in config.items() if k in supported or k == P.CACHE_DIR}
    config.update(props.get(OPENVINO_PROPERTIES))
    return config


def precision_name(value: Any) -> str:
    """OpenVINO's element type (``<Type: 'float32'>``) as aioinfer's ``f32``/``bf16``/``f16``."""
    text = getattr(value, "to_string", lambda: str(value))()
    return {"f32": "f32", "bf16": "bf16", "f16": "f16"}.get(text, text)
