"""What the compiler knows statically about a graph's values: declared or inferred types.

Types come from the graph's inputs, outputs, ``value_info`` and initializers, then from
constants the compiler has folded, and last from ONNX shape inference, which runs at most once
per top-level graph and only when asked for a value nothing else describes. Shape inference
gets a light copy of the graph: large initializers become typed inputs, so nothing heavy is
serialised.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import onnx
from onnx import GraphProto, TypeProto, helper

_SMALL = 4096  # initializers up to this many elements keep their data for inference


def tensor_type(value: Any) -> TypeProto | None:
    """The TypeProto of a NumPy array (``None`` for anything else)."""
    if not isinstance(value, np.ndarray) or value.dtype == object:
        return None
    try:
        elem = helper.np_dtype_to_tensor_dtype(value.dtype)
    except (KeyError, ValueError, TypeError):
        return None
    return helper.make_tensor_type_proto(elem, value.shape)


class ValueTypes:
    """Types of a graph's values, by name."""

    def __init__(
        self, graph: GraphProto, opsets: Mapping[str, int],
        functions: Iterable[onnx.FunctionProto] = (), *, infer: bool = True,
    ) -> None:
        self._graph = graph
        self._opsets = dict(opsets)
        self._functions = list(functions)
        self._known: dict[str, TypeProto] = {}
        for info in itertools.chain(graph.input, graph.output, graph.value_info):
            if info.type.WhichOneof("value"):
                self._known[info.name] = info.type
        for init in graph.initializer:
            self._known[init.name] = helper.make_tensor_type_proto(init.data_type, init.dims)
        self._inferred: dict[str, TypeProto] | None = None if infer else {}

    def type_of(self, name: str, value: Any = None) -> TypeProto | None:
        """The type of ``name``; ``value`` is its compile-time constant, if it has one."""
        if name in self._known:
            return self._known[name]
        from_value = tensor_type(value)
        if from_value is not None:
            return from_value
        if self._inferred is None:
            self._inferred = self._infer()
        return self._inferred.get(name)

    def inferred_type(self, name: str) -> TypeProto | None:
        """The type ONNX shape inference gives ``name`` (running it if it has not run)."""
        if self._inferred is None:
            self._inferred = self._infer()
        return self._inferred.get(name)

    def static_shape(self, name: str) -> tuple[int, ...] | None:
        """The shape of ``name`` if every dimension of it is a known number, else ``None``."""
        kind = self.type_of(name)
        if kind is None or kind.WhichOneof("value") != "tensor_type":
            return None
        tensor = kind.tensor_type
        if not tensor.HasField("shape"):
            return None
        dims = tensor.shape.dim
        if not all(d.HasField("dim_value") for d in dims):
            return None
        return tuple(d.dim_value for d in dims)

    def _infer(self) -> dict[str, TypeProto]:
        graph = self._graph
        small = [t for t in graph.initializer if np.prod(t.dims, dtype=np.int64) <= _SMALL]
        listed = {i.name for i in graph.input}
        as_inputs = [
            helper.make_tensor_value_info(t.name, t.data_type, t.dims)
            for t in graph.initializer
            if t.name not in listed and np.prod(t.dims, dtype=np.int64) > _SMALL
        ]
        light = helper.make_graph(
            graph.node, graph.name or "g", list(graph.input) + as_inputs, graph.output,
            initializer=small, value_info=graph.value_info,
        )
        opset_imports = [helper.make_opsetid(d, v) for d, v in self._opsets.items()]
        model = helper.make_model(light, opset_imports=opset_imports, functions=self._functions)
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception:  # noqa: BLE001 - inference is best effort; nothing is known then
            return {}
        infos = itertools.chain(inferred.graph.value_info, inferred.graph.output)
        return {i.name: i.type for i in infos if i.type.WhichOneof("value")}
