"""Custom operations (:class:`aioinfer.Op`) as ``onnx.reference`` operators for TEMPLATE."""

from __future__ import annotations

from typing import Any

import onnx
from onnx.reference.op_run import OpRun

from ...extensions import Op, call_evaluate, check_op, node_attributes


def op_run_class(cls: type[Op]) -> type[OpRun]:
    """An ``OpRun`` subclass (named ``cls.op_type``, in ``cls.domain``) whose run calls
    ``cls().evaluate`` with the node's decoded attributes."""
    check_op(cls)
    op = cls()

    def __init__(self: Any, onnx_node: onnx.NodeProto, run_params: dict[str, Any],
                 schema: Any = None) -> None:
        OpRun.__init__(self, onnx_node, run_params, schema)
        self._attributes = node_attributes(onnx_node)
        self._n_outputs = len(onnx_node.output)

    def _run(self: Any, *inputs: Any, **_: Any) -> tuple[Any, ...]:
        return call_evaluate(op, inputs, self._attributes, self._n_outputs)

    namespace = {"op_domain": cls.domain, "op_schema": None, "extension": cls,
                 "__init__": __init__, "_run": _run, "__module__": cls.__module__}
    return type(cls.op_type, (OpRun,), namespace)
