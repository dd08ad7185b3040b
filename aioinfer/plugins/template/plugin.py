"""TemplatePlugin: the device object (OpenVINO: ``src/plugins/template/src/plugin.cpp``).

A plugin is a long-lived object, one per device name in a :class:`~aioinfer.Core`. It owns
the device-wide properties and makes compiled models; it holds no per-model state. Its jobs:

* ``get_property`` / ``set_property`` -- through a :class:`~aioinfer.properties.PropertySet`,
  which already rejects unknown keys, writes to read-only keys and bad values with typed
  errors naming the key and the device;
* ``query_model`` -- which nodes this device can run (HETERO splits graphs with it);
* ``compile_model`` -- validate, then build a :class:`TemplateCompiledModel`;
* ``import_model`` -- the inverse of ``CompiledModel.export_model``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import onnx
from onnx.reference.op_run import OpRun

from ...errors import InvalidModelError, UnsupportedOperationError
from ...extensions import Op
from ...model import Model, load_model
from ...properties import PropertySet
from ...tensor import RemoteContext
from ..base import Plugin
from . import blob
from .compiled_model import TemplateCompiledModel
from .config import device_specs
from .custom_ops import op_run_class
from .fixes import BUILTIN_OPS, legacy_ops
from .support import (
    first_unsupported,
    iter_nodes,
    local_functions,
    op_key,
    unsupported_reason,
)


class TemplatePlugin(Plugin):
    """Reference semantics for every ONNX op, through ``onnx.reference.ReferenceEvaluator``.

    Custom operations are :class:`aioinfer.Op` subclasses (what ``Core.add_extension``
    installs) or ``onnx.reference.op_run.OpRun`` subclasses (with an ``op_domain`` class
    attribute), added with :meth:`add_operations`; model-local functions need nothing.
    """

    runs_operations = True

    def __init__(self, name: str = "TEMPLATE") -> None:
        self.name = name
        self.properties = PropertySet(device_specs(name), name)
        self._custom_ops: dict[tuple[str, str], type[OpRun]] = {
            op_key(cls): cls for cls in BUILTIN_OPS
        }

    # -- extensions ------------------------------------------------------------------------------
    def add_operations(self, ops: Iterable[type[OpRun] | type[Op]]) -> None:
        """Implement more (or replace) operations, for models compiled from now on."""
        for cls in ops:
            if isinstance(cls, type) and issubclass(cls, Op):
                cls = op_run_class(cls)
            if not (isinstance(cls, type) and issubclass(cls, OpRun)):
                raise TypeError(f"{self.name}: custom operations must be aioinfer.Op or "
                                f"OpRun subclasses, got {cls!r}")
            self._custom_ops[op_key(cls)] = cls

    def create_context(self, params: Mapping[str, Any]) -> RemoteContext:
        """A host context: its tensors are arrays the evaluator reads as they are."""
        return RemoteContext(self.name, params)

    # -- query ------------------------------------------------------------------------------------
    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        """Every top-level node the reference evaluator implements -> this device's name.

        A node with subgraphs (If, Loop, Scan) is supported only if all of its subgraphs are.
        """
        opsets = model.opsets
        functions = local_functions(model.proto)
        ops = self._ops_for(model)
        supported = {}
        for node in model.proto.graph.node:
            if all(
                unsupported_reason(n, opsets, functions, ops) is None
                for n in _with_subgraphs(node)
            ):
                supported[node.name] = self.name
        return supported

    # -- compile ----------------------------------------------------------------------------------
    def compile_model(self, model: Model, config: Mapping[str, Any]) -> TemplateCompiledModel:
        """Check every node can run, then compile. ``config`` overrides the plugin's
        read-write properties for this model only."""
        props = PropertySet(device_specs(self.name), self.name, **self._settable())
        props.set(config)  # validated all-or-nothing; unknown or read-only keys raise
        ops = self._ops_for(model)
        found = first_unsupported(model.proto, model.opsets, ops)
        if found is not None:
            node, reason = found
            raise UnsupportedOperationError(
                f"{self.name} cannot run node {node.name!r} ({_qualified(node)}): {reason}",
                node=node.name, op_type=node.op_type, device=self.name,
            )
        return TemplateCompiledModel(self, model, props, list(ops.values()))

    def _ops_for(self, model: Model) -> dict[tuple[str, str], type[OpRun]]:
        """The custom operations for ``model``: the ones added, over the versions
        onnx.reference lacks for the model's opsets."""
        return {**{op_key(cls): cls for cls in legacy_ops(model.opsets)}, **self._custom_ops}

    def _settable(self) -> dict[str, Any]:
        return {k: self.properties.get(k)
                for k, access in self.properties.supported().items() if access == "RW"}

    # -- import -----------------------------------------------------------------------------------
    def import_model(self, data: bytes, config: Mapping[str, Any]) -> TemplateCompiledModel:
        """Compile a blob written by :meth:`TemplateCompiledModel.export_model`; ``config``
        overrides the config stored in it."""
        model_bytes, stored = blob.decode(data, self.name)
        try:
            model = load_model(model_bytes)
        except InvalidModelError as exc:
            raise InvalidModelError(f"{self.name}: import_model: {exc}") from exc
        return self.compile_model(model, {**stored, **config})


def _with_subgraphs(node: onnx.NodeProto) -> list[onnx.NodeProto]:
    holder = onnx.GraphProto()
    holder.node.append(node)
    return list(iter_nodes(holder))


def _qualified(node: onnx.NodeProto) -> str:
    return f"{node.domain}.{node.op_type}" if node.domain else node.op_type
