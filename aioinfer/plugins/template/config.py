"""The properties of a TEMPLATE device, shared by the plugin and its compiled models."""

from __future__ import annotations

import onnx

from ... import properties as P
from ...properties import Property


def device_specs(device: str) -> list[Property]:
    """The properties a TEMPLATE plugin has (compiled models add their own read-only ones)."""
    return [
        # Read-only: facts about the device.
        Property(P.FULL_DEVICE_NAME, "human-readable device name", mutable=False,
                 default=f"{device} (onnx {onnx.__version__} reference evaluator)"),
        Property(P.OPTIMIZATION_CAPABILITIES, "what the device can do", mutable=False,
                 default=["FP32", "FP16", "BF16", "INT8", "FP8", "EXPORT_IMPORT"]),
        Property(P.DEVICE_UUID, "the host CPU's UUID (the CPU proxy groups plugins by it)",
                 mutable=False, getter=P.host_cpu_uuid),
        # Read-write: settings, validated by the property's function on every set.
        Property(P.PERFORMANCE_HINT, "LATENCY, THROUGHPUT or CUMULATIVE_THROUGHPUT",
                 validate=P.performance_mode, default=P.PerformanceMode.LATENCY),
        Property(P.NUM_STREAMS, "parallel streams (0/AUTO = from the hint)",
                 validate=P.streams, default=0),
        Property(P.PERFORMANCE_HINT_NUM_REQUESTS, "requests the app keeps in flight (0 = any)",
                 validate=P.non_negative_int, default=0),
        Property(P.PERF_COUNT, "collect per-stage and per-node profiling",
                 validate=P.boolean, default=False),
    ]
