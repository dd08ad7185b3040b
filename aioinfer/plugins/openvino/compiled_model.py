"""OpenVinoCompiledModel: an ``openvino.CompiledModel`` behind aioinfer's protocol.

OpenVINO owns the streams and their threads: a compiled model with the THROUGHPUT hint runs
``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` inferences at once on its own stream executors, so this
model leases no worker threads of ours. Its executor is a
:class:`~aioinfer.plugins.callbacks.CallbackExecutor`, which only starts OpenVINO requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import properties as P
from ...errors import InvalidModelError
from ...model import Model
from ...properties import Property, PropertySet
from ..base import CompiledModel
from ..callbacks import CallbackExecutor
from .config import FIXED_AT_COMPILE, precision_name
from .infer_request import OpenVinoInferRequest

if TYPE_CHECKING:
    from .plugin import OpenVinoPlugin


class OpenVinoCompiledModel(CompiledModel):
    """A model compiled by OpenVINO for ``DEVICE_ID``."""

    plugin: OpenVinoPlugin

    def __init__(self, plugin: OpenVinoPlugin, model: Model, config: PropertySet,
                 engine: Any) -> None:
        super().__init__(plugin, model, config)
        self.engine = engine
        self.compile_props = config  # what export_model stores (export.py)
        self.imported_from: Any = None  # the memory an imported engine may read in place
        self.executor = CallbackExecutor(f"{plugin.name}:{config.get(P.DEVICE_ID)}")
        self.engine_threads_niced = False  # set_worker_nice reaches OpenVINO's threads once
        self.input_order = _order(model.inputs, engine.inputs, "input", model)
        self.output_order = _order(model.outputs, engine.outputs, "output", model)
        self.profiling = bool(config.get(P.PERF_COUNT))
        self.properties = self._compiled_properties(config)

    def _compiled_properties(self, config: PropertySet) -> PropertySet:
        plugin = self.plugin
        reported = (P.NUM_STREAMS, P.INFERENCE_PRECISION_HINT, P.INFERENCE_NUM_THREADS)
        # The settings it was compiled with, frozen (they shaped OpenVINO's compiled model).
        specs = [Property(key, f"{key} (as compiled)", mutable=False, default=config.get(key))
                 for key, access in config.supported().items()
                 if (key in FIXED_AT_COMPILE or access == "RO") and key not in reported]
        specs += [
            Property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS, "requests to keep in flight (from "
                     "OpenVINO)", mutable=False,
                     getter=lambda: _engine_int(self.engine, P.OPTIMAL_NUMBER_OF_INFER_REQUESTS)),
            Property(P.NUM_STREAMS, "OpenVINO's streams for this model", mutable=False,
                     getter=lambda: _engine_int(self.engine, P.NUM_STREAMS)),
            Property(P.INFERENCE_NUM_THREADS, "OpenVINO's threads for this model", mutable=False,
                     getter=lambda: _engine_int(self.engine, P.INFERENCE_NUM_THREADS)),
            Property(P.INFERENCE_PRECISION_HINT, "the precision OpenVINO runs in",
                     mutable=False, getter=lambda: precision_name(
                         self.engine.get_property(P.INFERENCE_PRECISION_HINT))),
            Property(P.EXECUTION_DEVICES, "devices this model runs on", mutable=False,
                     getter=lambda: [f"{plugin.name}.{d}" for d in
                                     self.engine.get_property(P.EXECUTION_DEVICES)]),
            Property(P.MODEL_NAME, "the model's graph name", mutable=False,
                     getter=lambda: self.model.name),
        ]
        return PropertySet(specs, plugin.name)

    def export_model(self) -> bytes:
        """OpenVINO's compiled blob with the model's interface and config (:mod:`.export`)."""
        from .export import export_model

        return export_model(self)

    def create_sync_request(self) -> OpenVinoInferRequest:
        return OpenVinoInferRequest(self)

    def release(self, timeout: float | None = 5.0) -> None:
        super().release(timeout)
        self.engine = _Released()


def _order(ports: list[Any], engine_ports: list[Any], what: str, model: Model) -> list[int]:
    """For each of aioinfer's ports, the index of OpenVINO's port with the same name."""
    index: dict[str, int] = {}
    for k, port in enumerate(engine_ports):
        for name in port.get_names():
            index.setdefault(name, k)
    try:
        return [index[port.name] for port in ports]
    except KeyError as exc:
        raise InvalidModelError(f"OpenVINO's compiled model {model.name!r} has no {what} "
                                f"named {exc.args[0]!r}") from None


def _engine_int(engine: Any, key: str) -> int:
    try:
        return int(engine.get_property(key))
    except (RuntimeError, TypeError, ValueError):
        return 0


class _Released:
    """Stands in for a released model's engine: OpenVINO's memory is freed."""

    def __getattr__(self, name: str) -> Any:
        from ...errors import RequestError

        raise RequestError("the compiled model was released: compile the model again")
