"""ONNX -> ``openvino.Model`` through OpenVINO's ONNX frontend, and back to ONNX node names.

:func:`read` converts the whole model (what compiling needs); a node the frontend has no
conversion rule for becomes an :class:`~aioinfer.errors.UnsupportedOperationError` naming it.
:func:`read_partially` converts what it can, leaving ``ONNXFrameworkNode`` placeholders where it
cannot; each placeholder's outputs are then replaced by new Parameters typed from the ONNX
model, so OpenVINO's ``query_model`` judges the nodes after an unsupported one on their own.

:func:`onnx_owners` maps OpenVINO ops back to the ONNX nodes they came from. The frontend names
the op that produces an ONNX node's output after that node (or after the output tensor, for a
graph output) and keeps the ONNX tensor names on the op outputs; the helper ops it adds on the
way (``Broadcast_426``, ``ShapeOf_429``) carry neither. So: an op with a named output belongs to
the ONNX node that produces that tensor, an op with the friendly name of an ONNX node to that
node, and a helper op to the nodes its consumers belong to.
"""

from __future__ import annotations

import io
from typing import Any

import onnx

from ...errors import InvalidModelError, UnsupportedOperationError
from ...model import Model

# The placeholders convert_partially leaves (the name differs across OpenVINO releases).
PLACEHOLDERS = frozenset({"ONNXFrameworkNode", "NotSupportedONNXNode"})


def _frontend() -> Any:
    from openvino.frontend import FrontEndManager

    return FrontEndManager().load_by_framework("onnx")


def read(core: Any, model: Model, device: str) -> Any:
    """The whole model as an ``openvino.Model`` (``core``: an ``openvino.Core``)."""
    for node in string_nodes(model)[:1]:
        raise UnsupportedOperationError(
            f"{device} (OpenVINO) does not run node {node.name!r} ({_qualified(node)}): it "
            "reads or writes a string tensor, which OpenVINO's CPU plugin mishandles",
            node=node.name, op_type=node.op_type, device=device)
    data = model.proto.SerializeToString()
    try:
        return core.read_model(io.BytesIO(data))
    except RuntimeError as exc:
        _, placeholders = read_partially(model, typed=False)
        for node in model.proto.graph.node:
            if node.name in placeholders:
                raise UnsupportedOperationError(
                    f"{device} (OpenVINO) cannot run node {node.name!r} "
                    f"({_qualified(node)}): OpenVINO's ONNX frontend has no conversion for it",
                    node=node.name, op_type=node.op_type, device=device) from exc
        raise InvalidModelError(f"{device}: OpenVINO could not read model {model.name!r}: "
                                f"{_first_line(exc)}") from exc


def read_partially(model: Model, *, typed: bool = True) -> tuple[Any, set[str]]:
    """The model with unconvertible nodes left as placeholders, and those nodes' ONNX names.

    With ``typed``, the placeholders are cut out: their outputs become new Parameters (types
    from the ONNX model) and their inputs new Results, so the rest of the graph has static
    types for ``query_model`` and stays reachable."""
    frontend = _frontend()
    try:
        converted = frontend.convert_partially(
            frontend.load(io.BytesIO(model.proto.SerializeToString())))
    except RuntimeError as exc:
        raise InvalidModelError(f"OpenVINO could not read model {model.name!r}: "
                                f"{_first_line(exc)}") from exc
    placeholders = [op for op in converted.get_ordered_ops()
                    if op.get_type_name() in PLACEHOLDERS]
    names = {_node_named(model, op.get_friendly_name()).name for op in placeholders}
    if typed and placeholders:
        _cut(converted, model, placeholders)
    return converted, names


def _cut(converted: Any, model: Model, placeholders: list[Any]) -> None:
    import openvino.opset13 as ops

    parameters, results = [], []
    for op in placeholders:
        for source in op.input_values():
            results.append(ops.result(source))
        for output in op.outputs():
            names = output.get_names()
            shape, element = _ov_type(model, next(iter(names), ""))
            parameter = ops.parameter(shape, element)
            parameter.output(0).set_names(set(names))
            for target in list(output.get_target_inputs()):
                target.replace_source_output(parameter.output(0))
            parameters.append(parameter)
    converted.add_parameters(parameters)
    converted.add_results(results)
    try:
        converted.validate_nodes_and_infer_types()
    except RuntimeError:  # a type we could not give: query what type inference allows
        pass


def _ov_type(model: Model, tensor: str) -> tuple[Any, Any]:
    import openvino as ov

    value = model.value_type(tensor) if tensor else None
    if value is None or not value.HasField("tensor_type"):
        return ov.PartialShape.dynamic(), ov.Type.dynamic
    tensor_type = value.tensor_type
    try:
        element = ov.Type(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    except (KeyError, TypeError, RuntimeError, ValueError):
        element = ov.Type.dynamic
    if not tensor_type.HasField("shape"):
        return ov.PartialShape.dynamic(), element
    dims = [ov.Dimension(d.dim_value) if d.HasField("dim_value") else ov.Dimension()
            for d in tensor_type.shape.dim]
    return ov.PartialShape(dims), element


def onnx_owners(converted: Any, model: Model) -> dict[str, set[str]]:
    """OpenVINO op friendly name -> the ONNX node names it implements (empty for Parameters
    and initializer Constants)."""
    producer = {out: node.name for node in model.proto.graph.node for out in node.output if out}
    nodes = {node.name for node in model.proto.graph.node}
    ops = converted.get_ordered_ops()
    owners: dict[str, set[str]] = {}
    for op in reversed(ops):  # consumers first
        name = op.get_friendly_name()
        mine = {producer[t] for out in op.outputs() for t in out.get_names() if t in producer}
        if name in nodes:
            mine.add(name)
        if not mine and not any(out.get_names() for out in op.outputs()):
            for out in op.outputs():  # a helper op: it belongs to its consumers' nodes
                for target in out.get_target_inputs():
                    mine |= owners.get(target.get_node().get_friendly_name(), set())
        owners[name] = mine
    return owners


def supported_nodes(converted: Any, model: Model, claimed: set[str],
                    placeholders: set[str]) -> set[str]:
    """The ONNX nodes all of whose OpenVINO ops are in ``claimed`` (the op names
    ``query_model`` returned), less the ``placeholders``. A node none of whose ops survived
    conversion (an Identity or Dropout folded into its neighbour) is supported when the model
    converted without placeholders."""
    owners = onnx_owners(converted, model)
    failed = set(placeholders)
    seen: set[str] = set()
    for op in converted.get_ordered_ops():
        name = op.get_friendly_name()
        nodes = owners.get(name, set())
        seen |= nodes
        if name not in claimed and op.get_type_name() not in ("Parameter", "Result",
                                                              "Constant"):
            failed |= nodes
    everything = {node.name for node in model.proto.graph.node}
    free = set() if placeholders else everything - seen
    return ((seen | free) - failed) & everything


def string_nodes(model: Model) -> list[onnx.NodeProto]:
    """The top-level nodes that read or write a string tensor. OpenVINO's CPU plugin converts
    and runs them but corrupts its heap on some (an Identity over strings: ``free(): invalid
    pointer`` at exit, measured with OpenVINO 2026.4 alone), so the plugin leaves them to
    other devices."""
    found = []
    for node in model.proto.graph.node:
        for name in (*node.input, *node.output):
            kind = model.value_type(name) if name else None
            if (kind is not None and kind.HasField("tensor_type")
                    and kind.tensor_type.elem_type == onnx.TensorProto.STRING):
                found.append(node)
                break
    return found


def _node_named(model: Model, name: str) -> onnx.NodeProto:
    for node in model.proto.graph.node:
        if node.name == name or name in node.output:
            return node
    return model.proto.graph.node[0]


def _qualified(node: onnx.NodeProto) -> str:
    return f"{node.domain}.{node.op_type}" if node.domain else node.op_type


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
