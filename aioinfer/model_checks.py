"""Checks on the tensors a model carries, made when it is read and before any is decoded.

``onnx.checker`` validates the graph but not the data: an initializer may declare dims whose
product is 1e15, carry fewer bytes than its dims need, or keep its data in an "external" file
named ``../../etc/passwd``. Each tensor here (initializers, sparse initializers, tensor
attributes, in subgraphs and local functions too) must have non-negative dims, a known element
type, exactly the data its dims need, and a size under :mod:`aioinfer.limits`' cap. External
data is read only from regular files inside the model's folder, within the file's bounds.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator

import onnx
from onnx import AttributeProto, TensorProto, external_data_helper, helper

from .errors import InvalidModelError
from .limits import check_allocation

__all__ = ["check_tensors", "check_types", "iter_tensors"]

# What ONNX's strict type inference says when a value's element type breaks an operator's
# type constraints (its shape complaints are left to the devices, which know more).
_TYPE_ERROR = re.compile(r"TypeInferenceError|unsupported type|Type Error|typestr")

T = TensorProto
# Element types stored in fewer than 8 bits (packed two or more to a byte).
_SUB_BYTE = {getattr(T, n) for n in ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2")
             if hasattr(T, n)}
# The typed field each element type keeps its values in, and values per element there.
_FIELDS: dict[int, tuple[str, int]] = {
    T.FLOAT: ("float_data", 1), T.COMPLEX64: ("float_data", 2),
    T.DOUBLE: ("double_data", 1), T.COMPLEX128: ("double_data", 2),
    T.INT64: ("int64_data", 1), T.UINT32: ("uint64_data", 1), T.UINT64: ("uint64_data", 1),
    T.INT32: ("int32_data", 1), T.INT16: ("int32_data", 1), T.INT8: ("int32_data", 1),
    T.UINT16: ("int32_data", 1), T.UINT8: ("int32_data", 1), T.BOOL: ("int32_data", 1),
    T.FLOAT16: ("int32_data", 1), T.BFLOAT16: ("int32_data", 1),
}


def iter_tensors(proto: onnx.ModelProto) -> Iterator[tuple[str, TensorProto]]:
    """Every tensor a model carries, with a description of where it is."""
    yield from _graph_tensors(proto.graph, "")
    for function in proto.functions:
        for node in function.node:
            yield from _node_tensors(node, f"function {function.name!r}: ")


def _graph_tensors(graph: onnx.GraphProto, where: str) -> Iterator[tuple[str, TensorProto]]:
    for tensor in graph.initializer:
        yield f"{where}initializer {tensor.name!r}", tensor
    for sparse in graph.sparse_initializer:
        yield f"{where}sparse initializer {sparse.values.name!r} (values)", sparse.values
        yield f"{where}sparse initializer {sparse.values.name!r} (indices)", sparse.indices
    for node in graph.node:
        yield from _node_tensors(node, where)


def _node_tensors(node: onnx.NodeProto, where: str) -> Iterator[tuple[str, TensorProto]]:
    inner = f"{where}node {node.name!r}"
    for attr in node.attribute:
        if attr.type == AttributeProto.TENSOR:
            yield f"{inner} attribute {attr.name!r}", attr.t
        elif attr.type == AttributeProto.TENSORS:
            for k, tensor in enumerate(attr.tensors):
                yield f"{inner} attribute {attr.name!r}[{k}]", tensor
        elif attr.type == AttributeProto.SPARSE_TENSOR:
            yield f"{inner} attribute {attr.name!r} (values)", attr.sparse_tensor.values
            yield f"{inner} attribute {attr.name!r} (indices)", attr.sparse_tensor.indices
        elif attr.type == AttributeProto.GRAPH:
            yield from _graph_tensors(attr.g, f"{inner} attribute {attr.name!r}: ")
        elif attr.type == AttributeProto.GRAPHS:
            for k, graph in enumerate(attr.graphs):
                yield from _graph_tensors(graph, f"{inner} attribute {attr.name!r}[{k}]: ")


def check_tensors(proto: onnx.ModelProto, path: str | None = None) -> None:
    """Check every tensor of ``proto`` (read from file ``path``, if any) and load its external
    data; raises :class:`InvalidModelError` (or :class:`AllocationLimitError` for a tensor
    over the cap) naming the tensor."""
    for what, tensor in iter_tensors(proto):
        _check_tensor(tensor, what, path)


def _check_tensor(tensor: TensorProto, what: str, path: str | None) -> None:
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        raise InvalidModelError(f"{what} has a negative dimension: dims {dims}", path=path)
    if tensor.data_type == T.UNDEFINED:
        return  # checker's business (an attribute's empty default, a typeless value)
    try:
        itemsize = _itemsize(tensor.data_type)
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidModelError(
            f"{what} has an unknown element type {tensor.data_type}", path=path) from exc
    n = math.prod(dims)
    check_allocation(n, max(itemsize, 1), what=what)
    if tensor.data_type == T.STRING:
        if tensor.data_location != T.EXTERNAL and len(tensor.string_data) != n:
            raise _wrong_size(what, dims, f"{len(tensor.string_data)} strings", path)
        for k, value in enumerate(tensor.string_data):  # ONNX strings are UTF-8
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidModelError(f"{what}: string {k} is not valid UTF-8 ({exc.reason} "
                                        f"at byte {exc.start})", path=path) from exc
        return
    packed = (n + 1) // 2 if tensor.data_type in _SUB_BYTE else n * itemsize
    if tensor.data_location == T.EXTERNAL:
        _load_external(tensor, what, path, packed)
        return
    if tensor.HasField("raw_data"):
        if len(tensor.raw_data) != packed:
            raise _wrong_size(what, dims, f"{len(tensor.raw_data)} bytes of raw data "
                              f"({packed} needed)", path)
        return
    field, per = _FIELDS.get(tensor.data_type, ("", 0))
    if field and tensor.data_type not in _SUB_BYTE:
        have = len(getattr(tensor, field))
        if have != n * per:
            raise _wrong_size(what, dims, f"{have} values in {field} ({n * per} needed)", path)


def _itemsize(data_type: int) -> int:
    if data_type == T.STRING:
        return 8  # an object pointer per element once decoded
    if data_type in _SUB_BYTE:
        return 1
    return int(helper.tensor_dtype_to_np_dtype(data_type).itemsize)


def _wrong_size(what: str, dims: list[int], have: str, path: str | None) -> InvalidModelError:
    return InvalidModelError(
        f"{what} declares dims {dims} but carries {have} (truncated or corrupted?)", path=path)


def _load_external(tensor: TensorProto, what: str, path: str | None, nbytes: int) -> None:
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    if path is None:
        raise InvalidModelError(
            f"{what} keeps its data in external file {location!r}; a model given as bytes or "
            "a ModelProto has no folder to read it from: read the model from its path")
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    if not isinstance(location, str) or "\0" in location:
        raise InvalidModelError(f"{what}: external data location {location!r} is not a "
                                "valid path (not UTF-8, or a NUL byte in it)", path=path)
    if not location or os.path.isabs(location) or os.path.splitdrive(location)[0]:
        raise InvalidModelError(
            f"{what}: external data location {location!r} must be a path relative to the "
            "model's folder", path=path)
    target = os.path.realpath(os.path.join(folder, location))
    if os.path.commonpath([folder, target]) != folder:
        raise InvalidModelError(
            f"{what}: external data location {location!r} is outside the model's folder "
            f"{folder!r}", path=path)
    if not os.path.isfile(target):
        raise InvalidModelError(
            f"{what}: external data file {location!r} does not exist (or is not a regular "
            "file)", path=path)
    try:
        offset = int(info.get("offset", 0) or 0)
        length = int(info["length"]) if info.get("length") else os.path.getsize(target) - offset
    except ValueError as exc:
        raise InvalidModelError(f"{what}: external data offset or length is not an integer",
                                path=path) from exc
    size = os.path.getsize(target)
    if offset < 0 or length < 0 or offset + length > size:
        raise InvalidModelError(
            f"{what}: external data [{offset}, {offset + length}) is outside file "
            f"{location!r} of {size} bytes", path=path)
    if length != nbytes:
        raise InvalidModelError(
            f"{what}: external data holds {length} bytes, its dims need {nbytes}", path=path)
    try:
        external_data_helper.load_external_data_for_tensor(tensor, folder)
    except (OSError, ValueError) as exc:
        raise InvalidModelError(f"{what}: cannot read external data {location!r}: {exc}",
                                path=path) from exc


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _graphs(sub)


def _elem_types(kind: onnx.TypeProto) -> Iterator[int]:
    which = kind.WhichOneof("value")
    if which == "tensor_type":
        yield kind.tensor_type.elem_type
    elif which == "sparse_tensor_type":
        yield kind.sparse_tensor_type.elem_type
    elif which == "sequence_type":
        yield from _elem_types(kind.sequence_type.elem_type)
    elif which == "optional_type":
        yield from _elem_types(kind.optional_type.elem_type)
    elif which == "map_type":
        yield kind.map_type.key_type
        yield from _elem_types(kind.map_type.value_type)


def _dims_of(kind: onnx.TypeProto) -> Iterator[int]:
    which = kind.WhichOneof("value")
    if which in ("tensor_type", "sparse_tensor_type"):
        tensor = getattr(kind, which)
        if tensor.HasField("shape"):
            yield from (d.dim_value for d in tensor.shape.dim if d.HasField("dim_value"))
    elif which == "sequence_type":
        yield from _dims_of(kind.sequence_type.elem_type)
    elif which == "optional_type":
        yield from _dims_of(kind.optional_type.elem_type)
    elif which == "map_type":
        yield from _dims_of(kind.map_type.value_type)


_LIGHT_BYTES = 4096


def _without_weights(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` with every initializer over 4 KiB replaced by a graph input of its type and
    shape. Type inference needs the weights' types, not their values (only small tensors such
    as Reshape's shape are read as constants), and ``infer_shapes`` serialises the model twice:
    on a 100 MB ResNet-50 that cost 0.3-0.6 s per read."""
    if sum(t.ByteSize() for t in proto.graph.initializer) <= 1 << 20:
        return proto
    light = onnx.ModelProto(ir_version=proto.ir_version)
    light.opset_import.extend(proto.opset_import)
    light.functions.extend(proto.functions)
    graph, source = light.graph, proto.graph
    graph.name = source.name
    graph.node.extend(source.node)
    graph.input.extend(source.input)
    graph.output.extend(source.output)
    graph.value_info.extend(source.value_info)
    graph.sparse_initializer.extend(source.sparse_initializer)
    declared = {v.name for v in source.input}
    for tensor in source.initializer:
        if tensor.ByteSize() <= _LIGHT_BYTES:
            graph.initializer.append(tensor)
        elif tensor.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(
                tensor.name, tensor.data_type, list(tensor.dims)))
    return light


def check_types(proto: onnx.ModelProto, path: str | None = None) -> None:
    """Raise :class:`InvalidModelError` when ONNX's type inference finds a value whose
    element type an operator does not accept (``uint8`` into Conv, a ``double`` trip count)
    or that differs from its declared type: devices would otherwise each run the model their
    own way. Other inference failures (shapes, ops without a schema) are not errors here."""
    newest = onnx.defs.onnx_opset_version()
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx") and not 1 <= opset.version <= newest:
            raise InvalidModelError(
                f"the model imports opset {opset.version} of the default ONNX domain; this "
                f"onnx knows opsets 1 to {newest} (a model from the future, or corrupted)",
                path=path)
    known = set(T.DataType.values())
    for graph in _graphs(proto.graph):
        for info in (*graph.input, *graph.output, *graph.value_info):
            bad = [t for t in _elem_types(info.type) if t not in known]
            if bad:
                raise InvalidModelError(
                    f"value {info.name!r} of graph {graph.name!r} has an unknown element type "
                    f"{bad[0]}", path=path)
            # onnx's own shape inference aborts the process on some negative dims (a
            # std::clamp assertion in Slice's): refused before any inference runs
            negative = [d for d in _dims_of(info.type) if d < 0]
            if negative:
                raise InvalidModelError(
                    f"value {info.name!r} of graph {graph.name!r} has a negative dimension "
                    f"{negative[0]}", path=path)
    try:
        onnx.shape_inference.infer_shapes(_without_weights(proto), check_type=True,
                                          strict_mode=True)
    except (onnx.shape_inference.InferenceError, ValueError) as exc:
        text = str(exc)
        first = text.strip().splitlines()[0] if text.strip() else ""
        # Only the first error: later ones are often its consequences ("expected to have
        # type but instead is null" after a shape error upstream).
        if _TYPE_ERROR.search(first) and "instead is null" not in first:
            raise InvalidModelError(f"element types do not fit the model's operations: {text}",
                                    path=path) from exc
