"""``enable_qdq_optimizer``: keep QuantizeLinear/DequantizeLinear only where they pay.

A QDQ model written by a static quantizer may wrap every op's inputs in Q -> DQ pairs. Only
ops with quantized kernels (:data:`QUANTIZED_KERNEL_OPS`) gain from them; before any other op a
pair is a rounding step and two extra kernels. The pass drops each activation pair whose DQ
output feeds no such op (its readers read the Q's float input instead) and the Q once nobody
reads it. Weight DQs (of an initializer, no Q) and pairs whose DQ is a graph output stay, so
the model keeps its interface. Results change only by the rounding the pair did (the float
value is no longer snapped to the quantization grid), as with OpenVINO's NPU QDQ stripping.
"""

from __future__ import annotations

import onnx

QUANTIZED_KERNEL_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "MatMulInteger",
                                  "ConvInteger", "QLinearConv", "QLinearMatMul"})


def strip_qdq(proto: onnx.ModelProto) -> int:
    """Apply the pass to ``proto`` in place; return the number of nodes removed."""
    graph = proto.graph
    outputs = {o.name for o in graph.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    producers = {o: n for n in graph.node for o in node_outputs(n)}
    dropped: set[int] = set()
    for dq in graph.node:
        if dq.op_type != "DequantizeLinear" or dq.domain not in ("", "ai.onnx"):
            continue
        q = producers.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or list(q.input[1:]) != list(dq.input[1:]):
            continue
        value = dq.output[0]
        if value in outputs or any(r.op_type in QUANTIZED_KERNEL_OPS
                                   for r in readers.get(value, [])):
            continue
        source = q.input[0]
        for reader in readers.get(value, []):
            for k, name in enumerate(reader.input):
                if name == value:
                    reader.input[k] = source
            readers.setdefault(source, []).append(reader)
        readers[value] = []
        dropped.add(id(dq))
        readers[q.output[0]] = [r for r in readers.get(q.output[0], []) if r is not dq]
        if not readers[q.output[0]] and q.output[0] not in outputs:
            dropped.add(id(q))
    kept = [n for n in graph.node if id(n) not in dropped]
    removed = len(graph.node) - len(kept)
    if removed:
        copies = []
        for node in kept:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copies.append(copy)
        del graph.node[:]
        graph.node.extend(copies)
    return removed


def node_outputs(node: onnx.NodeProto) -> list[str]:
    return [o for o in node.output if o]
