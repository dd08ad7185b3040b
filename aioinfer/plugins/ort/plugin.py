"""OrtPlugin: the ``ORT`` device, onnxruntime's CPU execution provider as an aioinfer plugin.

``query_model`` answers from onnxruntime's own kernel registry, with trial compiles for ops
it expands from ONNX functions (:mod:`.capability`); ``compile_model`` makes one
``InferenceSession`` configured from the properties (:mod:`.config`); requests run with
``run_async`` (:mod:`.infer_request`). A node onnxruntime lacks (a custom-domain op) is an
:class:`~aioinfer.errors.UnsupportedOperationError` naming it, so HETERO and the ``CPU`` proxy
can place it elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import onnxruntime as ort

from ...errors import InvalidModelError, UnsupportedOperationError
from ...model import Model
from ...properties import PropertySet
from ..base import Plugin
from .capability import Capability
from .compiled_model import OrtCompiledModel
from .config import device_specs, session_options, settable


class OrtPlugin(Plugin):
    """onnxruntime behind aioinfer's plugin protocol."""

    def __init__(self, name: str = "ORT") -> None:
        self.name = name
        self.properties = PropertySet(device_specs(name), name)
        self._capability: Capability | None = None

    @property
    def capability(self) -> Capability:
        """onnxruntime's kernel registry and this plugin's trial-compile cache (built on
        first use)."""
        if self._capability is None:
            self._capability = Capability()
        return self._capability

    def _config(self, config: Mapping[str, Any]) -> PropertySet:
        props = PropertySet(device_specs(self.name), self.name, **settable(self.properties))
        props.set(config)  # validated all-or-nothing; unknown or read-only keys raise
        return props

    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        """Each node onnxruntime's CPU provider can run -> this device's name."""
        self._config(config)
        nodes = self.capability.supported(model)
        return {node.name: self.name for node in model.proto.graph.node if node.name in nodes}

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> OrtCompiledModel:
        """One ``InferenceSession`` for ``model`` on the CPU execution provider."""
        props = self._config(config)
        try:
            session = ort.InferenceSession(model.proto.SerializeToString(),
                                           session_options(props),
                                           providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types
            raise self._compile_error(model, exc) from exc
        return OrtCompiledModel(self, model, props, session)

    def _compile_error(self, model: Model, exc: Exception) -> Exception:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        supported = self.capability.supported(model)
        for node in model.proto.graph.node:
            if node.name not in supported:
                op = f"{node.domain}.{node.op_type}" if node.domain else node.op_type
                return UnsupportedOperationError(
                    f"{self.name} (onnxruntime) cannot run node {node.name!r} ({op}): "
                    f"{reason}", node=node.name, op_type=node.op_type, device=self.name)
        return InvalidModelError(f"{self.name}: onnxruntime could not load model "
                                 f"{model.name!r}: {reason}")
