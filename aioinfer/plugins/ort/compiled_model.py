"""OrtCompiledModel: one ``onnxruntime.InferenceSession`` shared by the model's requests.

onnxruntime's ``run`` and ``run_async`` are safe to call concurrently on one session, so the
requests share it, sized for ``NUM_STREAMS`` concurrent runs; ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``
is two requests per stream under a throughput hint (one running, one queued behind it), one
under LATENCY (:func:`.config.requests_in_flight`). The streams are the plugin's stream threads
(leased per stream count, shared with its other models), or with ``ORT_RUN_ASYNC`` threads of
onnxruntime's pool, started by a callback executor (no worker threads of ours then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import properties as P
from ...model import Model
from ...properties import Property, PropertySet
from ..base import CompiledModel
from ..callbacks import CallbackExecutor
from .config import FIXED_AT_COMPILE, ORT_RUN_ASYNC, requests_in_flight, streams_and_threads
from .infer_request import OrtInferRequest

if TYPE_CHECKING:
    from ...runtime.executors import Executor
    from .plugin import OrtPlugin


class OrtCompiledModel(CompiledModel):
    """A model compiled by onnxruntime's CPU execution provider."""

    plugin: OrtPlugin

    def __init__(self, plugin: OrtPlugin, model: Model, config: PropertySet,
                 session: Any) -> None:
        super().__init__(plugin, model, config)
        self.session = session
        self.input_names = [port.name for port in model.inputs]
        self.output_names = [port.name for port in model.outputs]
        self.streams, self.threads = streams_and_threads(config)
        self.in_flight = requests_in_flight(config, self.streams)
        self.run_async = bool(config.get(ORT_RUN_ASYNC))
        self.executor: CallbackExecutor | Executor = (
            CallbackExecutor(plugin.name) if self.run_async else self.lease_executor(self.streams))
        self.properties = self._compiled_properties(config)

    def _compiled_properties(self, config: PropertySet) -> PropertySet:
        specs = [Property(key, f"{key} (as compiled)", mutable=False, default=config.get(key))
                 for key, access in config.supported().items()
                 if key in FIXED_AT_COMPILE or access == "RO"]
        specs = [s for s in specs if s.key not in (P.NUM_STREAMS, P.INFERENCE_NUM_THREADS)]
        specs += [
            Property(P.PERF_COUNT, "per-stage profiling", validate=P.boolean,
                     default=config.get(P.PERF_COUNT)),
            Property(P.NUM_STREAMS, "concurrent runs the session is sized for",
                     mutable=False, default=self.streams),
            Property(P.INFERENCE_NUM_THREADS, "onnxruntime's compute threads", mutable=False,
                     default=self.threads),
            Property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS, "requests to keep in flight",
                     mutable=False, getter=lambda: self.in_flight),
            Property(P.EXECUTION_DEVICES, "devices this model runs on", mutable=False,
                     getter=lambda: [self.plugin.name]),
            Property(P.MODEL_NAME, "the model's graph name", mutable=False,
                     getter=lambda: self.model.name),
        ]
        return PropertySet(specs, self.plugin.name)

    def create_sync_request(self) -> OrtInferRequest:
        return OrtInferRequest(self)

    def release(self, timeout: float | None = 5.0) -> None:
        super().release(timeout)
        self.session = None  # onnxruntime frees the session once no run holds it
