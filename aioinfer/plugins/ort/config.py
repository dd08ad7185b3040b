"""The ORT device's properties and the ``onnxruntime.SessionOptions`` they make.

Streams are concurrent runs of one session, in one of two ways (``ORT_RUN_ASYNC``):

- ``False`` (the default): one stream thread of ours per stream calls ``run``, and is itself
  one of onnxruntime's compute threads (onnxruntime computes on the calling thread), so the
  session gets ``threads // streams`` intra-op threads, the calling one included: a lone
  request (LATENCY) has them all, ``streams`` requests (THROUGHPUT) one each, as two threads
  calling ``run`` on a session of one thread each.
- ``True``: ``run_async``, which runs the whole inference on a thread of the session's
  intra-op pool (onnxruntime refuses it without one) and calls back from there; the pool gets
  ``max(threads, streams)`` workers (``intra_op_num_threads`` counts an absent caller, hence
  one more). onnxruntime then splits parallel ops for one thread more than the pool has, so a
  lone request runs slower than ``run`` with the same threads (measured in
  ``benchmarks/engines.py``).

``ORT_SESSION_CONFIG`` passes session config entries verbatim
(``{"session.intra_op.allow_spinning": "0"}``), ``GRAPH_OPTIMIZATION_LEVEL`` picks
onnxruntime's graph optimizations (``ENABLE_ALL`` by default).

onnxruntime's pool threads spin on for tens of milliseconds after every ``run`` (measured with
onnxruntime 1.32: 35-65 ms of a core after one SqueezeNet run, 2-core host). The plugin leaves
that as onnxruntime has it, so that its sessions are configured as onnxruntime's own peer in
``benchmarks/engines.py``; ``{"session.force_spinning_stop": "1"}`` stops the spin when a run
returns. Measured on SqueezeNet LATENCY ``await infer_async``, paired rounds: better with the
stop on a host that others load part of the time (1.06x onnxruntime's ``run`` instead of
1.14x), worse on one they keep saturated (1.39x instead of 1.28x: between runs the spinning
thread keeps its core against the other processes), about the same on a quiet one; so no
default changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ... import properties as P
from ...properties import Property, PropertySet

ORT_SESSION_CONFIG = "ORT_SESSION_CONFIG"
"""Session config entries ``{key: value}`` (``SessionOptions.add_session_config_entry``)."""
GRAPH_OPTIMIZATION_LEVEL = "GRAPH_OPTIMIZATION_LEVEL"
ORT_RUN_ASYNC = "ORT_RUN_ASYNC"
"""Streams as ``run_async`` calls on onnxruntime's pool (True) or stream threads calling
``run`` (False, the default)."""

_LEVELS = ("DISABLE_ALL", "ENABLE_BASIC", "ENABLE_EXTENDED", "ENABLE_LAYOUT", "ENABLE_ALL")

FIXED_AT_COMPILE = (P.PERFORMANCE_HINT, P.NUM_STREAMS, P.PERFORMANCE_HINT_NUM_REQUESTS,
                    P.INFERENCE_NUM_THREADS, P.INFERENCE_PRECISION_HINT,
                    GRAPH_OPTIMIZATION_LEVEL, ORT_SESSION_CONFIG, ORT_RUN_ASYNC)


def _entries(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError("expected a mapping {session config key: value}")
    return {str(k): str(v) for k, v in value.items()}


def _level(value: Any) -> str:
    text = str(value).upper().removeprefix("ORT_")
    if text not in _LEVELS:
        raise ValueError(f"expected one of {', '.join(_LEVELS)}")
    return text


def _f32_only(value: Any) -> str:
    text = P.precision(value)
    if text != "f32":
        raise ValueError("onnxruntime's CPU provider runs the model's own types: f32 only")
    return text


def device_specs(name: str) -> list[Property]:
    """The properties the ORT plugin has."""
    import onnxruntime as ort

    return [
        Property(P.FULL_DEVICE_NAME, "human-readable device name", mutable=False,
                 default=f"onnxruntime {ort.__version__} CPUExecutionProvider (f32)"),
        Property(P.OPTIMIZATION_CAPABILITIES, "what the device can do", mutable=False,
                 default=["FP32", "INT8"]),
        Property(P.DEVICE_UUID, "the host CPU's UUID (the CPU proxy groups plugins by it)",
                 mutable=False, getter=P.host_cpu_uuid),
        Property(P.PERFORMANCE_HINT, "LATENCY, THROUGHPUT or CUMULATIVE_THROUGHPUT",
                 validate=P.performance_mode, default=P.PerformanceMode.LATENCY),
        Property(P.NUM_STREAMS, "concurrent runs of the session (0/AUTO = from the hint)",
                 validate=P.streams, default=0),
        Property(P.PERFORMANCE_HINT_NUM_REQUESTS, "requests the app keeps in flight (0 = any)",
                 validate=P.non_negative_int, default=0),
        Property(P.INFERENCE_NUM_THREADS, "onnxruntime's intra-op threads (0 = all cores)",
                 validate=P.non_negative_int, default=0),
        Property(P.INFERENCE_PRECISION_HINT, "f32 (onnxruntime runs the model's types)",
                 validate=_f32_only, default="f32"),
        Property(P.PERF_COUNT, "per-stage profiling", validate=P.boolean, default=False),
        Property(GRAPH_OPTIMIZATION_LEVEL, "onnxruntime's graph optimizations",
                 validate=_level, default="ENABLE_ALL"),
        Property(ORT_SESSION_CONFIG, "session config entries {key: value}",
                 validate=_entries, default={}),
        Property(ORT_RUN_ASYNC, "streams as run_async on onnxruntime's pool (True) or stream "
                 "threads calling run (False)", validate=P.boolean, default=False),
    ]


def settable(props: PropertySet) -> dict[str, Any]:
    return {k: props.get(k) for k, rw in props.supported().items() if rw == "RW"}


def streams_and_threads(props: PropertySet) -> tuple[int, int]:
    """(concurrent runs, compute threads) for ``props``."""
    streams = P.resolve_streams(props.get(P.PERFORMANCE_HINT), props.get(P.NUM_STREAMS),
                                props.get(P.PERFORMANCE_HINT_NUM_REQUESTS))
    threads = props.get(P.INFERENCE_NUM_THREADS) or P.host_cores()
    return streams, threads


def requests_in_flight(props: PropertySet, streams: int) -> int:
    """``OPTIMAL_NUMBER_OF_INFER_REQUESTS``: under a throughput hint two per stream (at most
    PERFORMANCE_HINT_NUM_REQUESTS when that is set, never fewer than the streams), one
    per stream under LATENCY.

    With one request per stream, a stream thread that ends a run waits, idle, while its result
    goes to the event loop and the loop starts the next request on it: 0.4-0.5 ms a request on
    a quiet 2-core host, milliseconds when the cores are busy (a woken thread waits for a
    core; ``run`` called back to back never sleeps). A second request per stream is queued
    when the first ends, so the thread starts it at once and the hand-over overlaps the run.
    SqueezeNet, two streams, against two threads calling ``run``, 16 paired rounds on a host
    that others kept busy: 0.88x with two requests in flight, 0.91x with three, 0.93x with four
    (CPU per inference 13.5 -> 12.8 ms: fewer sleeps and wake-ups); 151 -> 172 inferences/s
    on a quiet host.
    """
    if props.get(P.PERFORMANCE_HINT) is P.PerformanceMode.LATENCY:
        return streams
    wanted = props.get(P.PERFORMANCE_HINT_NUM_REQUESTS)
    return max(streams, min(2 * streams, wanted)) if wanted else 2 * streams


def session_options(props: PropertySet) -> Any:
    """``onnxruntime.SessionOptions`` for ``props``."""
    import onnxruntime as ort

    streams, threads = streams_and_threads(props)
    options = ort.SessionOptions()
    if props.get(ORT_RUN_ASYNC):
        options.intra_op_num_threads = max(threads, streams) + 1  # + the absent caller
    else:
        options.intra_op_num_threads = max(1, threads // streams)  # the stream thread's share
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # failures become typed errors; nothing on stderr
    options.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, f"ORT_{props.get(GRAPH_OPTIMIZATION_LEVEL)}")
    for key, value in props.get(ORT_SESSION_CONFIG).items():
        options.add_session_config_entry(key, value)
    return options
