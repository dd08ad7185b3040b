"""OpenVinoPlugin: the ``OPENVINO`` device, OpenVINO's runtime as an aioinfer plugin.

Installed with ``pip install "aioinfer[openvino]"``; without openvino, loading the device
raises :class:`~aioinfer.errors.PluginLoadError` and nothing else changes. The plugin reads the
ONNX model with OpenVINO's ONNX frontend (:mod:`.convert`), compiles it for ``DEVICE_ID``
(OpenVINO's ``CPU`` by default; ``GPU.0``, ``NPU`` where present, each listed as
``OPENVINO.<id>``) with the properties of :mod:`.config`, and runs requests with
``start_async`` and callbacks (:mod:`.infer_request`).

``query_model`` answers in ONNX node names: OpenVINO's own ``query_model`` runs on the
partially converted model, and its op names are mapped back to the ONNX nodes they came from
(:func:`.convert.supported_nodes`), so HETERO and the ``CPU`` proxy can send a node OpenVINO
lacks (a custom-domain op) to another device and keep the rest here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openvino as ov

from ... import properties as P
from ...errors import AioInferError, InvalidModelError, UnsupportedOperationError
from ...model import Model
from ...properties import PropertySet
from ..base import Plugin
from . import convert
from .compiled_model import OpenVinoCompiledModel
from .config import compile_config, device_specs, settable
from .watch import FailureWatch


class _Facts:
    """What OpenVINO says about its devices (the getters of the plugin's properties)."""

    def __init__(self, plugin: OpenVinoPlugin) -> None:
        self._plugin = plugin
        self.props: PropertySet | None = None  # whose DEVICE_ID the facts are about

    def _device(self) -> str:
        assert self.props is not None
        return str(self.props.get(P.DEVICE_ID))

    def _get(self, key: str, default: Any = None) -> Any:
        try:
            return self._plugin.ov.get_property(self._device(), key)
        except RuntimeError:
            return default

    def devices(self) -> list[str]:
        return list(self._plugin.ov_devices)

    def default_device(self) -> str:
        devices = self.devices()
        return "CPU" if "CPU" in devices or not devices else devices[0]

    def full_name(self) -> str:
        native = self._get(P.INFERENCE_PRECISION_HINT)
        own = f"; OpenVINO's own default precision here: {native.to_string()}" if native else ""
        return (f"{self._get(P.FULL_DEVICE_NAME, self._device())} (OpenVINO "
                f"{ov.__version__.split('-')[0]} {self._device()}; aioinfer runs f32 unless "
                f"INFERENCE_PRECISION_HINT says{own})")

    def capabilities(self) -> list[str]:
        return list(self._get(P.OPTIMIZATION_CAPABILITIES, []))

    def uuid(self) -> str:
        if self._device().startswith("CPU"):
            return P.host_cpu_uuid()  # the host CPU: one device with NUMPY, ORT, TEMPLATE
        value = self._get(P.DEVICE_UUID, "")
        return str(value) if value else ""


class OpenVinoPlugin(Plugin):
    """OpenVINO's runtime behind aioinfer's plugin protocol."""

    verifies_imports = True  # import_model checks the blob's checksum itself (export.py)

    def __init__(self, name: str = "OPENVINO") -> None:
        self.name = name
        self.ov = ov.Core()
        self.ov_devices = tuple(self.ov.available_devices)
        self.properties = self._property_set({})
        self.watch = FailureWatch(name)

    def _property_set(self, values: Mapping[str, Any]) -> PropertySet:
        facts = _Facts(self)
        props = PropertySet(device_specs(self.name, facts, self.check_device), self.name,
                            **values)
        facts.props = props
        return props

    def check_device(self, value: Any) -> str:
        """A DEVICE_ID value: one of OpenVINO's devices."""
        text = str(value).upper()
        devices = self.ov_devices
        if text not in devices:
            raise ValueError(f"expected one of OpenVINO's devices {', '.join(devices)}")
        return text

    def device_ids(self) -> tuple[str, ...]:
        return self.ov_devices

    def is_available(self) -> bool:
        return bool(self.ov_devices)

    def _config(self, config: Mapping[str, Any]) -> PropertySet:
        props = self._property_set(settable(self.properties))
        props.set(config)  # validated all-or-nothing; unknown or read-only keys raise
        return props

    # -- query ---------------------------------------------------------------------------------
    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        """Each ONNX node OpenVINO can run on ``DEVICE_ID`` -> this device's name."""
        props = self._config(config)
        converted, placeholders = convert.read_partially(model)
        try:
            claimed = set(self.ov.query_model(converted, str(props.get(P.DEVICE_ID))))
        except RuntimeError:
            return {}
        nodes = convert.supported_nodes(converted, model, claimed, placeholders)
        nodes -= {node.name for node in convert.string_nodes(model)}
        return {node.name: self.name for node in model.proto.graph.node if node.name in nodes}

    # -- compile -------------------------------------------------------------------------------
    def compile_model(self, model: Model, config: Mapping[str, Any]) -> OpenVinoCompiledModel:
        """Convert ``model`` with OpenVINO's ONNX frontend and compile it for ``DEVICE_ID``."""
        props = self._config(config)
        device = str(props.get(P.DEVICE_ID))
        converted = convert.read(self.ov, model, self.name)
        supported = self.ov.get_property(device, P.SUPPORTED_PROPERTIES)
        try:
            engine = self.ov.compile_model(converted, device, compile_config(props, supported))
        except RuntimeError as exc:
            raise self._compile_error(model, props, exc) from exc
        return OpenVinoCompiledModel(self, model, props, engine)

    def import_model(self, blob: bytes, config: Mapping[str, Any]) -> OpenVinoCompiledModel:
        """A compiled model from :meth:`OpenVinoCompiledModel.export_model`'s blob, without
        converting or compiling the graph (:mod:`.export`)."""
        from .export import import_model

        return import_model(self, blob, config)

    def _compile_error(self, model: Model, props: PropertySet,
                       exc: RuntimeError) -> AioInferError:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(exc).__name__
        supported = self.query_model(model, {P.DEVICE_ID: props.get(P.DEVICE_ID)})
        for node in model.proto.graph.node:
            if node.name not in supported:
                return UnsupportedOperationError(
                    f"{self.name} cannot run node {node.name!r} ({node.op_type}) on OpenVINO's "
                    f"{props.get(P.DEVICE_ID)}: {reason}",
                    node=node.name, op_type=node.op_type, device=self.name)
        return InvalidModelError(f"{self.name}: OpenVINO failed to compile model "
                                 f"{model.name!r}: {reason}")
