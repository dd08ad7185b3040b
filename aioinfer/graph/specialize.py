"""Input-shape specialisation: a graph whose dynamic inputs are given static shapes."""

from __future__ import annotations

from collections.abc import Mapping

import onnx


def with_input_shapes(
    graph: onnx.GraphProto, shapes: Mapping[str, tuple[int, ...]]
) -> onnx.GraphProto:
    """A copy of ``graph`` whose inputs named in ``shapes`` have those static shapes.

    ``value_info`` and the outputs' shapes are dropped (they hold the symbolic shapes, which
    would win over inferred ones): shape inference then derives static ones from the inputs.
    """
    out = onnx.GraphProto()
    out.CopyFrom(graph)
    del out.value_info[:]
    for info in out.output:
        if info.type.HasField("tensor_type"):
            info.type.tensor_type.ClearField("shape")
    for info in out.input:
        if info.name in shapes and info.type.HasField("tensor_type"):
            dims = info.type.tensor_type.shape
            del dims.dim[:]
            for d in shapes[info.name]:
                dims.dim.add().dim_value = int(d)
    return out


def has_dynamic_inputs(graph: onnx.GraphProto) -> bool:
    """Whether some graph input (not an initializer) lacks a static shape."""
    inits = {t.name for t in graph.initializer}
    for info in graph.input:
        if info.name in inits or not info.type.HasField("tensor_type"):
            continue
        tensor = info.type.tensor_type
        if not tensor.HasField("shape") or not all(
            d.HasField("dim_value") for d in tensor.shape.dim
        ):
            return True
    return False
