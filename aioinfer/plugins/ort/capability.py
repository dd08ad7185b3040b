"""Which ONNX nodes onnxruntime's CPU execution provider can run, in ONNX node names.

First onnxruntime's own kernel registry (``get_all_opkernel_def``: op, domain, opset range and
type constraints of every CPU kernel), matched as onnxruntime matches kernels: the node's
schema version (the newest not newer than the model's opset) inside the kernel's range, and
each of the node's input/output types (from shape inference) among the kernel's allowed types.
A node with subgraphs (If, Loop, Scan) needs every node of its bodies too; a call of a
model-local function every node of the function.

A node no kernel matches may still run: onnxruntime expands ops defined by an ONNX function
(``Gelu`` before opset 20, ``LayerNormalization`` before 17) into their bodies. Such a node
gets a trial compile of a one-node model with its types, cached per (domain, op, version,
types).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

import onnx
from onnx import helper

from ...model import Model

_DEFAULT_DOMAINS = ("", "ai.onnx")


def type_string(value: onnx.TypeProto | None) -> str | None:
    """onnxruntime's spelling of a type: ``tensor(float)``, ``seq(tensor(int64))``."""
    if value is None:
        return None
    kind = value.WhichOneof("value")
    if kind == "tensor_type":
        if not value.tensor_type.elem_type:
            return None
        return f"tensor({onnx.TensorProto.DataType.Name(value.tensor_type.elem_type).lower()})"
    if kind == "sequence_type":
        inner = type_string(value.sequence_type.elem_type)
        return None if inner is None else f"seq({inner})"
    if kind == "optional_type":
        inner = type_string(value.optional_type.elem_type)
        return None if inner is None else f"optional({inner})"
    return None


class KernelRegistry:
    """onnxruntime's CPU kernels by (domain, op type)."""

    def __init__(self) -> None:
        from onnxruntime.capi import _pybind_state as C

        self._kernels: dict[tuple[str, str], list[Any]] = {}
        for kernel in C.get_all_opkernel_def():
            if kernel.provider == "CPUExecutionProvider":
                domain = "" if kernel.domain in _DEFAULT_DOMAINS else kernel.domain
                self._kernels.setdefault((domain, kernel.op_name), []).append(kernel)

    def domains(self) -> set[str]:
        return {domain for domain, _ in self._kernels}

    def match(self, domain: str, op_type: str, version: int,
              types: dict[str, list[str | None]] | None) -> bool:
        """Whether a kernel covers ``version`` and ``types`` (type-constraint name -> the
        node's types bound to it; ``None``: do not check types)."""
        for kernel in self._kernels.get((domain, op_type), ()):
            start, end = kernel.version_range
            if not start <= version <= end:
                continue
            if types is None or all(
                t is None or t in allowed
                for name, allowed in kernel.type_constraints.items()
                for t in types.get(name, ())
            ):
                return True
        return False


class Capability:
    """The nodes of a model onnxruntime can run (one per plugin: trial compiles are cached)."""

    def __init__(self) -> None:
        self.registry = KernelRegistry()
        self._trials: dict[tuple[Any, ...], bool] = {}
        self._lock = threading.Lock()

    def supported(self, model: Model) -> set[str]:
        """Names of the top-level nodes of ``model`` onnxruntime's CPU provider runs."""
        opsets = model.opsets
        functions = {(f.domain, f.name): f for f in model.proto.functions}
        found = set()
        for node in model.proto.graph.node:
            if self._node(node, opsets, functions, model):
                found.add(node.name)
        return found

    def _node(self, node: onnx.NodeProto, opsets: dict[str, int],
              functions: dict[tuple[str, str], onnx.FunctionProto], model: Model | None) -> bool:
        domain = "" if node.domain in _DEFAULT_DOMAINS else node.domain
        function = functions.get((node.domain, node.op_type))
        if function is not None:  # onnxruntime inlines model-local functions
            inner = {**opsets, **{("" if o.domain in _DEFAULT_DOMAINS else o.domain): o.version
                                  for o in function.opset_import}}
            return all(self._node(n, inner, functions, None) for n in function.node)
        schema = _schema(node.op_type, opsets.get(domain, 1), domain)
        version = schema.since_version if schema is not None else opsets.get(domain, 1)
        types = _bound_types(node, schema, model) if schema is not None else None
        if not self.registry.match(domain, node.op_type, version, types):
            if schema is None or domain not in self.registry.domains():
                return False  # a custom domain: no kernel, nothing to expand
            if not self._trial(node, version, model):
                return False
        return all(self._node(n, opsets, functions, None) for n in _body_nodes(node))

    # -- trial compile -------------------------------------------------------------------------
    def _trial(self, node: onnx.NodeProto, version: int, model: Model | None) -> bool:
        if model is None:
            return True  # inside a body: no types to build a model with; let compile decide
        ins = [_typed(model, name) for name in node.input if name]
        outs = [_typed(model, name) for name in node.output if name]
        if any(v is None for v in (*ins, *outs)):
            return True  # untyped: compile decides
        key = (node.domain, node.op_type, version,
               tuple(v.type.SerializeToString() for v in ins))  # type: ignore[union-attr]
        with self._lock:
            known = self._trials.get(key)
        if known is None:
            known = _compiles(node, ins, outs, model)  # type: ignore[arg-type]
            with self._lock:
                self._trials[key] = known
        return known


def _schema(op_type: str, version: int, domain: str) -> Any:
    try:
        return onnx.defs.get_schema(op_type, version, domain)
    except onnx.defs.SchemaError:
        return None


def _bound_types(node: onnx.NodeProto, schema: Any, model: Model | None
                 ) -> dict[str, list[str | None]] | None:
    """Type-constraint name -> the node's types bound to it (inputs and outputs)."""
    if model is None:
        return None
    bound: dict[str, list[str | None]] = {}
    for names, formals in ((node.input, schema.inputs), (node.output, schema.outputs)):
        for k, name in enumerate(names):
            if not name or not formals:
                continue
            formal = formals[min(k, len(formals) - 1)]  # the last formal may be variadic
            bound.setdefault(formal.type_str, []).append(type_string(model.value_type(name)))
    return bound


def _body_nodes(node: onnx.NodeProto) -> Iterable[onnx.NodeProto]:
    for attribute in node.attribute:
        graphs: Sequence[onnx.GraphProto] = (
            [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs)
        for graph in graphs:
            yield from graph.node


def _typed(model: Model, name: str) -> onnx.ValueInfoProto | None:
    value = model.value_type(name)
    if value is None or type_string(value) is None:
        return None
    info = onnx.ValueInfoProto(name=name)
    info.type.CopyFrom(value)
    return info


def _compiles(node: onnx.NodeProto, ins: list[onnx.ValueInfoProto],
              outs: list[onnx.ValueInfoProto], model: Model) -> bool:
    import onnxruntime as ort

    graph = helper.make_graph([node], "trial", ins, outs)
    trial = helper.make_model(graph, opset_imports=list(model.proto.opset_import))
    trial.ir_version = model.proto.ir_version
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = 1
    try:
        ort.InferenceSession(trial.SerializeToString(), options,
                             providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime's own exception types: any failure means "cannot"
        return False
    return True
