"""GraphBuilder: a small helper that emits ONNX nodes, seeded weights and checked models."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Dims = Sequence[int | str]

EXAMPLE_INPUTS_KEY = "aioinfer.example_inputs"
"""Model metadata key: JSON ``{input: {"shape": [...], "high": int}}`` for example data."""


class GraphBuilder:
    """Accumulates nodes, initializers, inputs and outputs of one graph.

    ``op`` names every node and value after its op type and a counter, as exporters do
    (``/layer0/attn/MatMul``-style prefixes come from :meth:`scope`). Weights come from one
    seeded ``numpy.random.Generator``, so the same arguments always build the same model.
    """

    def __init__(self, name: str, seed: int = 0) -> None:
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.examples: dict[str, dict[str, Any]] = {}
        self._prefix = ""
        self._counts: dict[str, int] = {}
        self._consts: dict[tuple[Any, ...], str] = {}

    # -- naming ------------------------------------------------------------------------------
    def scope(self, prefix: str) -> GraphBuilder:
        """Set the name prefix of the nodes emitted next (``""`` to clear it)."""
        self._prefix = prefix.strip("/")
        return self

    def _unique(self, base: str) -> str:
        full = f"/{self._prefix}/{base}" if self._prefix else f"/{base}"
        count = self._counts.get(full, 0)
        self._counts[full] = count + 1
        return full if count == 0 else f"{full}_{count}"

    # -- values ------------------------------------------------------------------------------
    def input(self, name: str, elem_type: int, shape: Dims, example: Dims,
              high: int | None = None) -> str:
        """Declare a graph input and the concrete shape (and int range) of its example data."""
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        entry: dict[str, Any] = {"shape": [int(d) for d in example]}
        if high is not None:
            entry["high"] = int(high)
        self.examples[name] = entry
        return name

    def output(self, value: str, name: str, elem_type: int, shape: Dims) -> str:
        """Expose ``value`` as graph output ``name`` (adds an Identity only when renaming)."""
        if value != name:
            self.nodes.append(helper.make_node("Identity", [value], [name],
                                               name=self._unique("Identity")))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def tensor(self, name: str, array: np.ndarray) -> str:
        """Add ``array`` as an initializer named ``name``."""
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def weight(self, name: str, shape: Sequence[int], std: float | None = None) -> str:
        """A float32 initializer of seeded normal values (std ``1/sqrt(fan_in)`` by default)."""
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
        scale = std if std is not None else 1.0 / np.sqrt(max(fan_in, 1))
        data = self.rng.standard_normal(tuple(shape)).astype(np.float32) * np.float32(scale)
        return self.tensor(name, data)

    def const(self, value: Any, dtype: Any = np.int64) -> str:
        """A shared constant initializer (int64 by default), as exporters emit for shapes."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        name = self._consts.get(key)
        if name is None:
            name = self._consts[key] = self.tensor(f"onnx::const_{len(self._consts)}", array)
        return name

    def scalar(self, value: float) -> str:
        """A float32 scalar as a ``Constant`` node, the way torch.onnx emits Python floats."""
        name = self._unique("Constant")
        out = f"{name}_output_0"
        tensor = numpy_helper.from_array(np.asarray(value, np.float32), out)
        self.nodes.append(helper.make_node("Constant", [], [out], name=name, value=tensor))
        return out

    # -- nodes -------------------------------------------------------------------------------
    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs: Any) -> Any:
        """Emit one node; returns its output name (or a list when ``outputs > 1``)."""
        name = self._unique(op_type)
        outs = [f"{name}_output_{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs

    # -- result ------------------------------------------------------------------------------
    def build(self, opset: int, *, doc: str = "", metadata: Mapping[str, str] | None = None,
              check: bool = True) -> onnx.ModelProto:
        """The finished ``onnx.ModelProto``, checked with ``full_check=True``."""
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                  self.initializers, doc_string=doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                                  producer_name="aioinfer.models", producer_version="0.1.0")
        # The oldest IR version that carries this opset: what older runtimes accept too.
        model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
        props = {EXAMPLE_INPUTS_KEY: json.dumps(self.examples), **(metadata or {})}
        helper.set_model_props(model, props)
        if check:
            onnx.checker.check_model(model, full_check=True)
        return model


FLOAT = TensorProto.FLOAT
INT64 = TensorProto.INT64
