"""Model: an ONNX graph with its inputs, outputs, reshape and a networkx view."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
import onnx
from onnx import helper

from .errors import InputError, InvalidModelError, PartitionError
from .graph.ir import node_reads
from .graph.value_types import ValueTypes
from .model_checks import check_tensors, check_types

Dim = int | str | None  # static size, symbolic name, or unknown


@dataclass(frozen=True)
class Port:
    """One model input or output.

    ``shape`` is ``None`` when even the rank is unknown; a dimension is an ``int`` when static,
    a ``str`` for a named dynamic dimension, ``None`` for an anonymous dynamic one.
    """

    name: str
    shape: tuple[Dim, ...] | None
    element_type: np.dtype | None
    index: int
    kind: str = "tensor"  # tensor, sequence, optional, map

    @property
    def is_dynamic(self) -> bool:
        return self.shape is None or any(not isinstance(d, int) for d in self.shape)

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    def __repr__(self) -> str:
        dims = "?" if self.shape is None else ",".join(
            str(d) if d is not None else "?" for d in self.shape
        )
        dtype = self.element_type.name if self.element_type is not None else "?"
        return f"<Port {self.name!r} {dtype}[{dims}]>"


def dtype_of(elem_type: int) -> np.dtype | None:
    """The numpy dtype of an ONNX TensorProto element type (ml_dtypes for the exotic ones)."""
    if elem_type == onnx.TensorProto.UNDEFINED:
        return None
    if elem_type == onnx.TensorProto.STRING:
        return np.dtype(object)
    return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type))


def port_of(info: onnx.ValueInfoProto, index: int) -> Port:
    """A :class:`Port` describing a graph input or output."""
    type_proto = info.type
    kind = type_proto.WhichOneof("value")
    if kind == "tensor_type":
        tensor = type_proto.tensor_type
        shape: tuple[Dim, ...] | None = None
        if tensor.HasField("shape"):
            shape = tuple(
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in tensor.shape.dim
            )
        return Port(info.name, shape, dtype_of(tensor.elem_type), index)
    name = {"sequence_type": "sequence", "optional_type": "optional", "map_type": "map"}
    return Port(info.name, None, None, index, name.get(kind or "", "tensor"))


class Model:
    """An ONNX model read by :meth:`aioinfer.Core.read_model`.

    The model owns its own copy of the ``onnx.ModelProto`` (``proto``). Every node has a unique
    name (unnamed nodes are named ``<OpType>_<index>``), so results of ``query_model`` and
    errors can name them.
    """

    def __init__(self, proto: onnx.ModelProto, *, path: str | None = None) -> None:
        self.proto = proto
        self.path = path
        self._types: tuple[onnx.ModelProto, ValueTypes] | None = None
        _name_nodes(proto.graph)

    @property
    def name(self) -> str:
        return self.proto.graph.name

    @property
    def opsets(self) -> dict[str, int]:
        """Domain -> opset version (the default domain is ``""``)."""
        return {("" if o.domain == "ai.onnx" else o.domain): o.version
                for o in self.proto.opset_import}

    @property
    def inputs(self) -> list[Port]:
        """Graph inputs that the caller must feed (initializers excluded)."""
        init = {t.name for t in self.proto.graph.initializer}
        real = [i for i in self.proto.graph.input if i.name not in init]
        return [port_of(info, k) for k, info in enumerate(real)]

    @property
    def outputs(self) -> list[Port]:
        return [port_of(info, k) for k, info in enumerate(self.proto.graph.output)]

    def input(self, key: int | str | None = None) -> Port:
        """One input, by position or name (``None``: the only input)."""
        return _pick(self.inputs, key, "input")

    def output(self, key: int | str | None = None) -> Port:
        """One output, by position or name (``None``: the only output)."""
        return _pick(self.outputs, key, "output")

    @property
    def graph(self) -> nx.DiGraph:
        """A ``networkx.DiGraph`` of the nodes: node attributes ``op_type``, ``domain``,
        ``inputs``, ``outputs``; edge attribute ``tensors`` (names flowing along the edge)."""
        return graph_view(self.proto.graph)

    def reshape(self, shapes: Sequence[Dim] | Mapping[int | str, Sequence[Dim]]) -> None:
        """Set new input shapes (a dict by name or index, or one shape for a single input).

        Dimensions may be ints, names or ``None``/``-1`` for dynamic; shapes of the rest of the
        graph are inferred again.
        """
        if not isinstance(shapes, Mapping):
            shapes = {None: shapes}  # type: ignore[dict-item]
        graph = self.proto.graph
        by_name = {i.name: i for i in graph.input}
        for key, shape in shapes.items():
            port = self.input(key)
            info = by_name[port.name]
            if port.rank is not None and len(shape) != port.rank:
                raise InputError(
                    f"reshape of input {port.name!r}: rank {len(shape)} given, model input "
                    f"has rank {port.rank}",
                    input_name=port.name,
                )
            dims = info.type.tensor_type.shape
            dims.ClearField("dim")
            for d in shape:
                dim = dims.dim.add()
                if isinstance(d, (int, np.integer)) and d >= 0:
                    dim.dim_value = int(d)
                elif isinstance(d, str):
                    dim.dim_param = d
        del graph.value_info[:]
        try:
            self.proto = onnx.shape_inference.infer_shapes(self.proto)
        except onnx.shape_inference.InferenceError as exc:
            raise InputError(f"reshape: shapes are not valid for this model: {exc}") from exc

    def clone(self) -> Model:
        copy = onnx.ModelProto()
        copy.CopyFrom(self.proto)
        return Model(copy, path=self.path)

    def value_type(self, name: str) -> onnx.TypeProto | None:
        """The type of top-level value ``name``: declared (ports, ``value_info``,
        initializers), else from ONNX shape inference of the whole model, which runs once per
        model (again after :meth:`reshape`); ``None`` when nothing knows it."""
        if self._types is None or self._types[0] is not self.proto:
            graph = self.proto.graph
            self._types = (self.proto, ValueTypes(graph, self.opsets, self.proto.functions))
        types = self._types[1]
        kind = types.type_of(name)
        if kind is not None and kind.HasField("tensor_type") and not kind.tensor_type.HasField(
            "shape"
        ):  # declared without a shape: inference may know the rank, or more
            inferred = types.inferred_type(name)
            if (inferred is not None and inferred.HasField("tensor_type")
                    and inferred.tensor_type.elem_type == kind.tensor_type.elem_type):
                return inferred
        return kind

    def extract(
        self, nodes: Sequence[str], inputs: Sequence[str], outputs: Sequence[str],
        name: str | None = None,
    ) -> Model:
        """A sub-model of the top-level nodes named ``nodes`` (kept in model order, with their
        names), reading ``inputs`` and producing ``outputs`` as typed graph inputs and outputs.

        The sub-model holds the initializers the nodes and their subgraph bodies read, the
        model's opset imports, local functions and IR version. Raises
        :class:`~aioinfer.errors.PartitionError` for an unknown node, a value the nodes read
        that is neither produced by them, nor listed in ``inputs``, nor an initializer, an
        output they do not produce, or an input or output whose type is not known (an unknown
        shape is fine: the port is dynamic).
        """
        graph = self.proto.graph
        by_name = {n.name: n for n in graph.node}
        for node_name in nodes:
            if node_name not in by_name:
                raise PartitionError(f"extract: the model has no node {node_name!r}",
                                     node=node_name)
        chosen = set(nodes)
        picked = [n for n in graph.node if n.name in chosen]
        initializers = {t.name: t for t in graph.initializer}
        sparse = {t.values.name: t for t in graph.sparse_initializer}
        given = set(inputs)
        produced: set[str] = set()
        read: dict[str, None] = {}
        for node in picked:
            for value in node_reads(node):
                if not value or value in produced or value in given:
                    continue
                if value not in initializers and value not in sparse:
                    raise PartitionError(
                        f"extract: node {node.name!r} reads {value!r}, which is not an input of "
                        "the sub-model, an initializer, or made by an earlier node in it",
                        node=node.name, value=value,
                    )
                read[value] = None
            produced.update(o for o in node.output if o)
        for value in outputs:
            if value not in produced:
                raise PartitionError(
                    f"extract: output {value!r} is not made by any of the nodes", value=value
                )
        values = dict.fromkeys((*inputs, *outputs))
        info = {v.name: v for v in graph.value_info if v.name in produced and v.name not in values}
        defaults = [i for i in graph.input if i.name in read]  # initializers listed as inputs
        sub = helper.make_graph(
            [_copy(n) for n in picked], name or f"{graph.name}_part",
            [*(self._typed(v, "input") for v in inputs), *defaults],
            [self._typed(v, "output") for v in outputs],
            initializer=[initializers[v] for v in read if v in initializers],
            sparse_initializer=[sparse[v] for v in read if v in sparse],
            value_info=list(info.values()),
        )
        proto = helper.make_model(sub, opset_imports=list(self.proto.opset_import),
                                  functions=list(self.proto.functions))
        proto.ir_version = self.proto.ir_version
        proto.producer_name = self.proto.producer_name
        proto.producer_version = self.proto.producer_version
        proto.domain = self.proto.domain
        proto.model_version = self.proto.model_version
        return Model(proto, path=self.path)

    def _typed(self, value: str, what: str) -> onnx.ValueInfoProto:
        kind = self.value_type(value)
        if kind is None or not kind.WhichOneof("value") or (
            kind.HasField("tensor_type") and not kind.tensor_type.elem_type
        ):
            raise PartitionError(
                f"extract: the type of {what} {value!r} is not known (declare it in the "
                "model's value_info)", value=value,
            )
        out = onnx.ValueInfoProto()
        out.name = value
        out.type.CopyFrom(kind)
        return out

    def __repr__(self) -> str:
        return f"<Model {self.name!r} inputs={self.inputs} outputs={self.outputs}>"


def _pick(ports: list[Port], key: int | str | None, what: str) -> Port:
    if key is None:
        if len(ports) != 1:
            raise InputError(f"the model has {len(ports)} {what}s; name one")
        return ports[0]
    if isinstance(key, int):
        if not -len(ports) <= key < len(ports):
            raise InputError(f"{what} index {key} out of range: the model has {len(ports)}")
        return ports[key]
    for port in ports:
        if port.name == key:
            return port
    names = [p.name for p in ports]
    raise InputError(f"no {what} named {key!r}; the model's {what}s are {names}", input_name=key)


def _name_nodes(graph: onnx.GraphProto) -> None:
    seen: set[str] = set()
    for index, node in enumerate(graph.node):
        if not node.name or node.name in seen:
            base = node.name or f"{node.op_type}_{index}"
            name, k = base, 1
            while name in seen:
                name, k = f"{base}_{k}", k + 1
            node.name = name
        seen.add(node.name)


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    out = onnx.NodeProto()
    out.CopyFrom(node)
    return out


def graph_view(graph: onnx.GraphProto) -> nx.DiGraph:
    """A networkx view of ``graph``'s nodes (see :attr:`Model.graph`)."""
    view = nx.DiGraph()
    producer: dict[str, str] = {}
    for node in graph.node:
        view.add_node(node.name, op_type=node.op_type, domain=node.domain,
                      inputs=list(node.input), outputs=list(node.output))
        for out in node.output:
            if out:
                producer[out] = node.name
    for node in graph.node:
        for name in node.input:
            src = producer.get(name)
            if src is not None:
                if view.has_edge(src, node.name):
                    view.edges[src, node.name]["tensors"].append(name)
                else:
                    view.add_edge(src, node.name, tensors=[name])
    return view


def load_model(source: Any) -> Model:
    """Read a model from a path, bytes or an ``onnx.ModelProto`` (raises InvalidModelError)."""
    path = None
    try:
        if isinstance(source, onnx.ModelProto):
            proto = onnx.ModelProto()
            proto.CopyFrom(source)
        elif isinstance(source, (bytes, bytearray, memoryview)):
            proto = onnx.load_from_string(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if not os.path.isfile(path):
                raise InvalidModelError(f"model file {path!r} does not exist", path=path)
            proto = onnx.load(path, load_external_data=False)
        else:
            raise InvalidModelError(
                f"cannot read a model from {type(source).__name__}: expected a path, bytes or "
                "onnx.ModelProto"
            )
    except InvalidModelError:
        raise
    except Exception as exc:  # protobuf DecodeError and friends
        where = f" {path!r}" if path else ""
        raise InvalidModelError(
            f"cannot parse ONNX model{where}: {exc or type(exc).__name__} (truncated or not an "
            "ONNX file?)",
            path=path,
        ) from exc
    check_tensors(proto, path)
    if not proto.graph.node and not proto.graph.output:
        where = f" {path!r}" if path else ""
        raise InvalidModelError(f"ONNX model{where} has an empty graph", path=path)
    try:
        onnx.checker.check_model(proto)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise InvalidModelError(f"invalid ONNX model: {exc}", path=path) from exc
    check_types(proto, path)
    return Model(proto, path=path)
