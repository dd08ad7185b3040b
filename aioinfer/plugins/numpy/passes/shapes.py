"""Static shapes for graphs whose inputs are all static: ONNX shape inference over the IR.

Rerun after folding, inference sees the folded shape tensors as constants (Reshape targets,
Expand shapes, Slice bounds) and so knows shapes that the first run, over the symbolic
computation, could not; each round can fold more Shape/Size nodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .ir import Evaluator, GraphIR

_SMALL = 4096  # constants up to this many elements travel with their data


def infer_static_shapes(
    ir: GraphIR, inputs: Iterable[onnx.ValueInfoProto]
) -> dict[str, tuple[int, ...]]:
    """Value name -> static shape, for every value inference can pin down."""
    inits, typed = [], list(inputs)
    for name, value in ir.constants.items():
        if not isinstance(value, np.ndarray) or value.dtype == object:
            continue
        if value.size <= _SMALL:
            inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        else:
            elem = helper.np_dtype_to_tensor_dtype(value.dtype)
            typed.append(helper.make_tensor_value_info(name, elem, value.shape))
    opsets: dict[str, int] = {}
    for node_opsets in ir.opsets:
        for domain, version in node_opsets.items():
            opsets[domain] = max(opsets.get(domain, 0), version)
    graph = helper.make_graph(ir.nodes, "shapes", typed, [], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                    for d, v in opsets.items()])
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    except Exception:  # noqa: BLE001 - inference is best effort: nothing more is known
        return {}
    shapes = {}
    for info in (*inferred.value_info, *typed):
        tensor = info.type.tensor_type
        if info.type.HasField("tensor_type") and tensor.HasField("shape") and all(
            d.HasField("dim_value") for d in tensor.shape.dim
        ):
            shapes[info.name] = tuple(d.dim_value for d in tensor.shape.dim)
    return shapes


def fold_static_shapes(
    ir: GraphIR, shapes: dict[str, tuple[int, ...]], evaluate: Evaluator
) -> int:
    """Shape/Size of a value with a static shape become constants; return how many."""
    folded = []
    for node, opsets in ir.pairs():
        if node.op_type not in ("Shape", "Size") or node.domain not in ("", "ai.onnx"):
            continue
        shape = shapes.get(node.input[0])
        if shape is None or node.output[0] in ir.keep:
            continue
        stand_in: Any = np.broadcast_to(np.zeros((), dtype=np.float32), shape)
        outputs = evaluate(node, opsets, [stand_in])
        if outputs is None:
            continue
        ir.constants[node.output[0]] = outputs[0]
        folded.append(node)
    ir.remove(folded)
    return len(folded)
