"""Compile an ONNX graph into a flat :class:`Plan`.

The compiler resolves every value name to a slot index, binds each node's attributes to its
kernel once, folds nodes whose inputs are all constants, and compiles the subgraphs of
control-flow ops (If, Loop, Scan) into plans of their own. Values a subgraph reads from an
enclosing scope are *captured*: they are appended to the node's inputs, and the subgraph plan
receives them after its own inputs, so a kernel stays a pure function of its arguments.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ...errors import AllocationLimitError, InferenceError, UnsupportedOperationError
from ...graph.ir import captured_names, subgraphs
from ...graph.value_types import ValueTypes
from ...limits import guard
from ...model import port_of
from .functions import FunctionExpander, TypeOf
from .passes import optimize as optimize_graph
from .plan import Plan, Step
from .registry import BUILTINS, KernelRegistry, KernelSpec

_MAX_CALL_DEPTH = 64
_STATIC_SHAPE_OPS = {"Shape", "Size"}  # foldable when their input's shape is static


def compile_graph(
    graph: onnx.GraphProto,
    opsets: Mapping[str, int],
    *,
    captured: Iterable[str] = (),
    device: str = "NUMPY",
    fold_constants: bool = True,
    functions: Iterable[onnx.FunctionProto] = (),
    optimize: bool = True,
    registry: KernelRegistry | None = None,
) -> Plan:
    """Compile ``graph`` for the opset versions in ``opsets`` (domain -> version).

    ``functions`` are the model's local functions (``model.functions``); calls to them are
    inlined, as are ops without a kernel whose ONNX schema defines a function body.
    ``optimize`` runs NUMPY's graph passes (:mod:`aioinfer.plugins.numpy.passes`: folding,
    fusion) on the top-level graph first (it needs ``fold_constants``). ``registry`` is the
    plugin instance's kernels (built-ins plus its extensions; default: the built-ins alone).
    """
    functions = list(functions)
    compiler = _Compiler(opsets, device, fold_constants, FunctionExpander(functions),
                         registry or BUILTINS)
    compiler.optimize = optimize and fold_constants
    types = ValueTypes(graph, compiler.opsets, functions)
    return compiler.compile(graph, list(captured), compiler.opsets, types, top=True)


def sparse_to_dense(sparse: onnx.SparseTensorProto) -> np.ndarray:
    """A dense array from a SparseTensorProto (linear or coordinate indices)."""
    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
    shape = tuple(sparse.dims)
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), dtype=values.dtype)
    if indices.ndim == 2:  # [nnz, rank] coordinates
        indices = np.ravel_multi_index(tuple(indices.T), shape)
    dense[indices] = values
    return dense.reshape(shape)


class _Compiler:
    def __init__(
        self, opsets: Mapping[str, int], device: str, fold: bool, functions: FunctionExpander,
        registry: KernelRegistry,
    ) -> None:
        self.registry = registry
        self.opsets = {("" if k == "ai.onnx" else k): v for k, v in opsets.items()}
        self.device = device
        self.fold = fold
        self.functions = functions
        self.optimize = False

    def compile(
        self, graph: onnx.GraphProto, captured: list[str], opsets: Mapping[str, int],
        types: ValueTypes | None = None, top: bool = False,
    ) -> Plan:
        types = types or ValueTypes(graph, opsets, infer=False)
        slots: dict[str, int] = {}
        constants: dict[int, Any] = {}

        def slot(name: str) -> int:
            if name not in slots:
                slots[name] = len(slots)
            return slots[name]

        initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for sp in graph.sparse_initializer:
            initializers[sp.values.name] = sparse_to_dense(sp)
        input_names = [i.name for i in graph.input if i.name not in initializers]
        input_slots = [slot(n) for n in input_names] + [slot(n) for n in captured]
        for name, value in initializers.items():
            constants[slot(name)] = value

        def type_of(name: str) -> onnx.TypeProto | None:
            return types.type_of(name, constants.get(slots.get(name, -1)))

        steps: list[Step] = []
        nodes: Iterable[tuple[onnx.NodeProto, Mapping[str, int]]]
        nodes = self._expand(graph.node, opsets, type_of, 0)
        if top and self.optimize:
            keep = {o.name for o in graph.output} | set(input_names) | set(captured)
            own = [i for i in graph.input if i.name in input_names]
            static = own if all(types.static_shape(i.name) for i in own) else None
            ir = optimize_graph(list(nodes), dict(initializers), keep, self._evaluate,
                                shape_of=types.static_shape, static_inputs=static)
            nodes = ir.pairs()
            for name, value in ir.constants.items():
                if initializers.get(name) is not value:  # folded, or re-laid out by a pass
                    constants[slot(name)] = value
        for index, (node, node_opsets) in enumerate(nodes):
            name = node.name or f"{node.op_type}_{index}"
            fn, spec = self._bind(node, name, node_opsets)
            sub_captured = captured_names(node)
            ins = tuple(slot(i) if i else None for i in node.input) + tuple(
                slot(n) for n in sub_captured
            )
            outs = tuple(slot(o) if o else slot(f"\0unused:{name}:{k}") for k, o in
                         enumerate(node.output))
            step = Step(fn, ins, outs, name, node.op_type)
            if self._foldable(spec, node, ins, constants):
                self._fold(step, constants)
            elif (dummy := self._static_shape_input(spec, node, ins, types)) is not None:
                assert ins[0] is not None  # Shape/Size of a present input
                self._fold(step, {**constants, ins[0]: dummy}, into=constants)
            else:
                steps.append(step)

        output_slots = [slot(o.name) for o in graph.output]
        read = {i for s in steps for i in s.ins if i is not None} | set(output_slots)
        constants = {k: v for k, v in constants.items() if k in read}  # drop folded-away values
        return Plan(
            n_slots=len(slots),
            constants=constants,
            input_slots=input_slots,
            output_slots=output_slots,
            steps=steps,
            input_names=input_names,
            output_names=[o.name for o in graph.output],
            captured=list(captured),
            device=self.device,
            output_ports=[port_of(o, i) for i, o in enumerate(graph.output)],
        )

    def _evaluate(
        self, node: onnx.NodeProto, opsets: Mapping[str, int], inputs: Sequence[Any]
    ) -> list[Any] | None:
        """Run one node at compile time (graph-pass folding); ``None`` if it must not."""
        spec = self._lookup(node, opsets)
        if spec is None or not spec.foldable or any(subgraphs(a) for a in node.attribute):
            return None
        fn, _ = self._bind(node, node.name or node.op_type, opsets)
        step = Step(fn, tuple(range(len(inputs))), tuple(range(len(node.output))),
                    node.name or node.op_type, node.op_type)
        values = dict(enumerate(inputs))
        out: dict[int, Any] = {}
        self._fold(step, values, into=out)
        return [out[k] for k in range(len(node.output))]

    def _expand(
        self, nodes: Iterable[onnx.NodeProto], opsets: Mapping[str, int], type_of: TypeOf,
        depth: int,
    ) -> Iterator[tuple[onnx.NodeProto, Mapping[str, int]]]:
        """The nodes with calls of local and schema-defined functions inlined (recursively)."""
        for node in nodes:
            fn = self.functions.local(node)
            if fn is not None and self.registry.overrides(node.op_type, node.domain):
                fn = None  # an extension's own kernel runs, not its decomposition
            found: tuple[list[onnx.NodeProto], dict[str, int]] | None
            if fn is not None:
                found = self.functions.expand_local(node, fn, opsets)
            elif self._lookup(node, opsets) is None:
                found = self.functions.expand_schema(node, opsets, type_of)
            else:
                found = None
            if found is None:
                yield node, opsets
                continue
            if depth >= _MAX_CALL_DEPTH:
                raise UnsupportedOperationError(
                    f"node {node.name!r} ({node.op_type}): functions nested deeper than "
                    f"{_MAX_CALL_DEPTH} calls (recursive function?)",
                    node=node.name,
                    op_type=node.op_type,
                    device=self.device,
                )
            yield from self._expand(found[0], found[1], type_of, depth + 1)

    def _lookup(self, node: onnx.NodeProto, opsets: Mapping[str, int]) -> KernelSpec | None:
        domain = "" if node.domain == "ai.onnx" else node.domain
        opset = opsets.get(domain)
        return self.registry.lookup(node.op_type, opset if opset is not None else 10**6, domain)

    def _bind(
        self, node: onnx.NodeProto, name: str, opsets: Mapping[str, int]
    ) -> tuple[Any, KernelSpec]:
        domain = "" if node.domain == "ai.onnx" else node.domain
        opset = opsets.get(domain)
        spec = self._lookup(node, opsets)
        if spec is None:
            where = f"{domain}::{node.op_type}" if domain else node.op_type
            raise UnsupportedOperationError(
                f"node {name!r}: operation {where} (opset {opset}) is not supported by "
                f"{self.device}",
                node=name,
                op_type=node.op_type,
                device=self.device,
            )
        captured = captured_names(node)
        attrs = {a.name: self._attr_value(a, captured, opsets) for a in node.attribute}
        params = inspect.signature(spec.fn).parameters
        if "n_outputs" in params:
            attrs["n_outputs"] = len(node.output)
        if "opset" in params:
            attrs["opset"] = opset
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        if not accepts_any:
            unknown = [k for k in attrs if k not in params]
            if unknown:
                raise UnsupportedOperationError(
                    f"node {name!r} ({node.op_type}): attribute(s) {unknown} not supported by "
                    f"{self.device}",
                    node=name,
                    op_type=node.op_type,
                    device=self.device,
                )
        fn = functools.partial(spec.fn, **attrs) if attrs else spec.fn
        return guard(fn, node.op_type, name, self.device, domain), spec

    def _attr_value(
        self, attr: onnx.AttributeProto, captured: list[str], opsets: Mapping[str, int]
    ) -> Any:
        kind = attr.type
        if kind == onnx.AttributeProto.GRAPH:
            return self.compile(attr.g, captured, opsets)
        if kind == onnx.AttributeProto.GRAPHS:
            return [self.compile(g, captured, opsets) for g in attr.graphs]
        if kind == onnx.AttributeProto.TENSOR:
            return numpy_helper.to_array(attr.t)
        if kind == onnx.AttributeProto.TENSORS:
            return [numpy_helper.to_array(t) for t in attr.tensors]
        if kind == onnx.AttributeProto.SPARSE_TENSOR:
            return sparse_to_dense(attr.sparse_tensor)
        if kind == onnx.AttributeProto.STRING:
            return attr.s.decode("utf-8")
        if kind == onnx.AttributeProto.STRINGS:
            return [s.decode("utf-8") for s in attr.strings]
        if kind == onnx.AttributeProto.INTS:
            return list(attr.ints)
        if kind == onnx.AttributeProto.FLOATS:
            return list(attr.floats)
        return onnx.helper.get_attribute_value(attr)

    def _foldable(
        self, spec: KernelSpec, node: onnx.NodeProto, ins: tuple[int | None, ...],
        constants: dict[int, Any],
    ) -> bool:
        if not (self.fold and spec.foldable):
            return False
        if any(subgraphs(a) for a in node.attribute):
            return False
        return all(i is None or i in constants for i in ins)

    def _static_shape_input(
        self, spec: KernelSpec, node: onnx.NodeProto, ins: tuple[int | None, ...],
        types: ValueTypes,
    ) -> np.ndarray | None:
        """For Shape/Size of a value whose shape is static: a zero-cost stand-in for it."""
        if not (self.fold and spec.foldable) or node.op_type not in _STATIC_SHAPE_OPS:
            return None
        if spec.domain or len(ins) != 1 or ins[0] is None:
            return None
        shape = types.static_shape(node.input[0])
        if shape is None:
            return None
        return np.broadcast_to(np.zeros((), dtype=np.float32), shape)

    def _fold(
        self, step: Step, constants: dict[int, Any], into: dict[int, Any] | None = None
    ) -> None:
        """Run ``step`` on the values in ``constants``; store its outputs in ``into``."""
        into = constants if into is None else into
        try:
            with np.errstate(all="ignore"):  # as at run time: IEEE results, no warnings
                result = step.fn(*[None if i is None else constants[i] for i in step.ins])
        except AllocationLimitError:
            raise
        except Exception as exc:
            raise InferenceError(
                f"node {step.node!r} ({step.op_type}) failed while folding constants: {exc}",
                node=step.node,
                device=self.device,
            ) from exc
        if len(step.outs) == 1:
            into[step.outs[0]] = result[0] if isinstance(result, tuple) else result
        else:
            for slot, value in zip(step.outs, result, strict=True):
                into[slot] = value
