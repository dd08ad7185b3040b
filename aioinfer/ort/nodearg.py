"""NodeArg and ModelMetadata: how onnxruntime describes a session's inputs, outputs and model.

``NodeArg.type`` is onnxruntime's type string (``tensor(float)``, ``seq(tensor(int64))``,
``map(string,tensor(float))``, ``optional(tensor(float))``) and ``NodeArg.shape`` a list whose
dimensions are ``int`` (static), ``str`` (a symbolic ``dim_param``) or ``None`` (unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx

_ELEMENT_NAMES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float", onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT16: "uint16",
    onnx.TensorProto.INT16: "int16", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT64: "int64", onnx.TensorProto.STRING: "string",
    onnx.TensorProto.BOOL: "bool", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "double", onnx.TensorProto.UINT32: "uint32",
    onnx.TensorProto.UINT64: "uint64", onnx.TensorProto.COMPLEX64: "complex64",
    onnx.TensorProto.COMPLEX128: "complex128", onnx.TensorProto.BFLOAT16: "bfloat16",
    onnx.TensorProto.FLOAT8E4M3FN: "float8e4m3fn", onnx.TensorProto.FLOAT8E5M2: "float8e5m2",
    onnx.TensorProto.UINT4: "uint4", onnx.TensorProto.INT4: "int4",
}

Dim = int | str | None


def type_string(kind: onnx.TypeProto) -> str:
    """onnxruntime's spelling of an ONNX type."""
    which = kind.WhichOneof("value")
    if which == "tensor_type":
        return f"tensor({_ELEMENT_NAMES.get(int(kind.tensor_type.elem_type), 'undefined')})"
    if which == "sparse_tensor_type":
        return f"sparse_tensor({_ELEMENT_NAMES.get(int(kind.sparse_tensor_type.elem_type), '?')})"
    if which == "sequence_type":
        return f"seq({type_string(kind.sequence_type.elem_type)})"
    if which == "optional_type":
        return f"optional({type_string(kind.optional_type.elem_type)})"
    if which == "map_type":
        key = _ELEMENT_NAMES.get(int(kind.map_type.key_type), "?")
        return f"map({key},{type_string(kind.map_type.value_type)})"
    return "undefined"


def shape_of(kind: onnx.TypeProto) -> list[Dim]:
    """The dimensions of a tensor type (``[]`` for non-tensors and unknown ranks)."""
    if kind.WhichOneof("value") != "tensor_type" or not kind.tensor_type.HasField("shape"):
        return []
    dims: list[Dim] = []
    for dim in kind.tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(int(dim.dim_value))
        elif dim.HasField("dim_param") and dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return dims


@dataclass(frozen=True)
class NodeArg:
    """One input or output of a session (onnxruntime's ``NodeArg``)."""

    name: str
    type: str
    shape: list[Dim] = field(default_factory=list)

    @classmethod
    def from_value_info(cls, info: onnx.ValueInfoProto) -> NodeArg:
        return cls(info.name, type_string(info.type), shape_of(info.type))

    def __repr__(self) -> str:
        return f"NodeArg(name={self.name!r}, type={self.type!r}, shape={self.shape!r})"


@dataclass(frozen=True)
class ModelMetadata:
    """The model's metadata (onnxruntime's ``ModelMetadata``)."""

    producer_name: str
    graph_name: str
    domain: str
    description: str
    graph_description: str
    version: int
    custom_metadata_map: dict[str, str]

    @classmethod
    def from_proto(cls, proto: onnx.ModelProto) -> ModelMetadata:
        return cls(
            producer_name=proto.producer_name, graph_name=proto.graph.name,
            domain=proto.domain, description=proto.doc_string,
            graph_description=proto.graph.doc_string,
            # onnxruntime reports an unset model_version as INT64_MAX
            version=proto.model_version if proto.HasField("model_version") else 2**63 - 1,
            custom_metadata_map={p.key: p.value for p in proto.metadata_props},
        )
