"""TemplateCompiledModel: one model compiled for TEMPLATE (OpenVINO: ``compiled_model.cpp``).

A compiled model owns what every request of it shares: the model, its compile-time
properties and the device executor (one worker thread per stream). Requests own what they
must not share. Here that includes the evaluator itself: ``ReferenceEvaluator.run`` keeps its
values in locals, but some onnx.reference ops write to their own attributes while they run
(RNN sets ``self.num_directions``; the ai.onnx.ml tree and SVM ops cache their model on first
run), so one evaluator is not safe to run from two threads at once. Each request therefore
gets its own evaluator. The one built at compile time -- which is how compile errors surface
early -- is handed to the first request instead of being thrown away.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

from ... import properties as P
from ...errors import InvalidModelError, UnsupportedOperationError
from ...model import Model
from ...properties import Property, PropertySet, resolve_streams
from ..base import CompiledModel
from . import blob
from .config import device_specs
from .infer_request import TemplateInferRequest
from .support import build_evaluator, first_line

if TYPE_CHECKING:
    from .plugin import TemplatePlugin

# Settings that shape the executor: fixed once compiled, so read-only on the compiled model.
_FIXED_AT_COMPILE = (P.PERFORMANCE_HINT, P.NUM_STREAMS, P.PERFORMANCE_HINT_NUM_REQUESTS)


class TemplateCompiledModel(CompiledModel):
    """A model ready to run on the reference evaluator."""

    def __init__(
        self,
        plugin: TemplatePlugin,
        model: Model,
        config: PropertySet,
        custom_ops: list[type[OpRun]],
    ) -> None:
        super().__init__(plugin, model, config)
        self._custom_ops = custom_ops
        self._config = config.as_dict()
        self._spare: ReferenceEvaluator | None = self._new_evaluator()
        self._spare_lock = threading.Lock()
        self.streams = resolve_streams(
            config.get(P.PERFORMANCE_HINT), config.get(P.NUM_STREAMS),
            config.get(P.PERFORMANCE_HINT_NUM_REQUESTS),
        )
        # The device executor: "infer" stages of all requests of this model share its
        # workers, so at most ``streams`` evaluations run at once.
        self.executor = self.lease_executor(self.streams)
        self.properties = self._compiled_properties(plugin, config)

    def _compiled_properties(self, plugin: TemplatePlugin, config: PropertySet) -> PropertySet:
        specs = [
            Property(spec.key, spec.doc, mutable=spec.mutable and spec.key not in
                     _FIXED_AT_COMPILE, validate=spec.validate, default=config.get(spec.key))
            for spec in device_specs(plugin.name)
        ]
        specs += [
            Property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS, "requests to keep in flight",
                     mutable=False, getter=lambda: self.streams),
            Property(P.EXECUTION_DEVICES, "devices this model runs on", mutable=False,
                     getter=lambda: [plugin.name]),
            Property(P.MODEL_NAME, "the model's graph name", mutable=False,
                     getter=lambda: self.model.name),
        ]
        return PropertySet(specs, plugin.name)

    # -- evaluators -------------------------------------------------------------------------------
    def _new_evaluator(self) -> ReferenceEvaluator:
        try:
            return build_evaluator(self.model.proto, self._custom_ops)
        except NotImplementedError as exc:
            raise UnsupportedOperationError(
                f"{self.device}: the reference evaluator cannot load model "
                f"{self.model.name!r}: {first_line(exc)}", device=self.device,
            ) from exc
        except Exception as exc:  # onnx raises RuntimeError/TypeError/ValueError while loading
            raise InvalidModelError(
                f"{self.device}: the reference evaluator rejected model {self.model.name!r}: "
                f"{type(exc).__name__}: {first_line(exc)}"
            ) from exc

    def take_evaluator(self) -> ReferenceEvaluator:
        """An evaluator for a new request's exclusive use."""
        with self._spare_lock:
            spare, self._spare = self._spare, None
        return spare if spare is not None else self._new_evaluator()

    # -- protocol ---------------------------------------------------------------------------------
    def create_sync_request(self) -> TemplateInferRequest:
        return TemplateInferRequest(self)

    def export_model(self) -> bytes:
        """The model and its compile config (import with ``TemplatePlugin.import_model``)."""
        config = {k: v for k, v in self._config.items()
                  if self.plugin.properties.supported().get(k) == "RW"}
        return blob.encode(self.model.proto.SerializeToString(), config)
