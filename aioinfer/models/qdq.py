"""QDQ quantization of a float model: QuantizeLinear/DequantizeLinear pairs around the inputs
of Conv, MatMul and Gemm, the format ONNX Runtime's static quantizer writes.

Weights (float initializers) become int8 initializers followed by a DequantizeLinear:
symmetric, per output channel for Conv, per tensor for MatMul and Gemm. Activations get a
uint8 (or int8) QuantizeLinear -> DequantizeLinear pair whose scale and zero point come from
calibration: the float model runs on example inputs with ``onnx.reference`` and the observed
min/max of each activation sets its range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from .inputs import example_inputs

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


def qdq(
    model: onnx.ModelProto,
    *,
    activation_type: str = "uint8",
    calibration: Mapping[str, np.ndarray] | None = None,
    seed: int = 0,
) -> onnx.ModelProto:
    """A QDQ-quantized copy of ``model`` (which is left untouched).

    ``activation_type`` is ``"uint8"`` (asymmetric, the default) or ``"int8"``;
    ``calibration`` maps input names to arrays (default: the model's seeded example inputs).
    """
    if activation_type not in ("uint8", "int8"):
        raise ValueError(f"qdq: activation_type must be 'uint8' or 'int8', got "
                         f"{activation_type!r}")
    if any(o.domain in ("", "ai.onnx") and o.version < 13 for o in model.opset_import):
        raise ValueError("qdq: per-channel QuantizeLinear needs opset >= 13")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {t.name: t for t in graph.initializer}
    targets = [n for n in graph.node if n.op_type in QUANTIZED_OPS]
    activations = sorted({name for n in targets for name in _quantized_inputs(n)
                          if name not in inits})
    ranges = _calibrate(model, activations, calibration, seed)

    new_inits: list[onnx.TensorProto] = []
    dq_nodes: dict[str, list[onnx.NodeProto]] = {}  # value -> nodes to insert before its use
    replacement: dict[str, str] = {}
    for node in targets:
        for name in _quantized_inputs(node):
            if name in replacement:
                continue
            if name in inits:
                axis = 0 if node.op_type == "Conv" else None
                nodes, tensors, replacement[name] = _quantize_weight(inits[name], axis)
            else:
                nodes, tensors, replacement[name] = _quantize_activation(
                    name, *ranges[name], activation_type)
            new_inits += tensors
            dq_nodes[name] = nodes
    for node in targets:
        for k in _quantized_slots(node):
            node.input[k] = replacement[node.input[k]]
    _insert_nodes(graph, dq_nodes, set(inits))
    graph.initializer.extend(new_inits)
    used = {i for n in graph.node for i in n.input}
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    helper.set_model_props(out, {**{p.key: p.value for p in model.metadata_props},
                                 "aioinfer.quantization": f"qdq w=int8 a={activation_type}"})
    graph.name = f"{graph.name}_qdq"
    onnx.checker.check_model(out, full_check=True)
    return out


def _quantized_slots(node: onnx.NodeProto) -> range:
    return range(min(2, len(node.input)))  # data and weight; biases stay float


def _quantized_inputs(node: onnx.NodeProto) -> list[str]:
    return [node.input[k] for k in _quantized_slots(node) if node.input[k]]


def _calibrate(model: onnx.ModelProto, names: list[str],
               calibration: Mapping[str, np.ndarray] | None,
               seed: int) -> dict[str, tuple[float, float]]:
    if not names:
        return {}
    feeds = dict(calibration) if calibration is not None else example_inputs(model, seed=seed)
    values = ReferenceEvaluator(model).run(names, feeds)
    return {n: (float(np.min(v)), float(np.max(v))) for n, v in zip(names, values, strict=True)}


def _quantize_weight(tensor: onnx.TensorProto, axis: int | None
                     ) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    w = numpy_helper.to_array(tensor).astype(np.float32)
    if axis is None:
        scale = np.asarray(max(float(np.abs(w).max()), 1e-8) / 127.0, np.float32)
        shaped = scale
    else:
        reduce = tuple(d for d in range(w.ndim) if d != axis)
        scale = np.maximum(np.abs(w).max(axis=reduce), 1e-8).astype(np.float32) / 127.0
        shaped = scale.reshape([-1 if d == axis else 1 for d in range(w.ndim)])
    q = np.clip(np.rint(w / shaped), -127, 127).astype(np.int8)
    zero = np.zeros(scale.shape, np.int8)
    base = tensor.name
    tensors = [numpy_helper.from_array(q, f"{base}_quantized"),
               numpy_helper.from_array(scale.astype(np.float32), f"{base}_scale"),
               numpy_helper.from_array(zero, f"{base}_zero_point")]
    out = f"{base}_DequantizeLinear_Output"
    attrs: dict[str, Any] = {} if axis is None else {"axis": axis}
    node = helper.make_node("DequantizeLinear", [t.name for t in tensors], [out],
                            name=f"{base}_DequantizeLinear", **attrs)
    return [node], tensors, out


def _quantize_activation(name: str, lo: float, hi: float, kind: str
                         ) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    lo, hi = min(lo, 0.0), max(hi, 0.0)  # zero must be exactly representable
    if kind == "uint8":
        scale = max(hi - lo, 1e-8) / 255.0
        zero = np.asarray(np.clip(np.rint(-lo / scale), 0, 255), np.uint8)
    else:
        scale = max(abs(lo), abs(hi), 1e-8) / 127.0
        zero = np.asarray(0, np.int8)
    tensors = [numpy_helper.from_array(np.asarray(scale, np.float32), f"{name}_scale"),
               numpy_helper.from_array(zero, f"{name}_zero_point")]
    quantized, out = f"{name}_QuantizeLinear_Output", f"{name}_DequantizeLinear_Output"
    nodes = [
        helper.make_node("QuantizeLinear", [name, *[t.name for t in tensors]], [quantized],
                         name=f"{name}_QuantizeLinear"),
        helper.make_node("DequantizeLinear", [quantized, *[t.name for t in tensors]], [out],
                         name=f"{name}_DequantizeLinear"),
    ]
    return nodes, tensors, out


def _insert_nodes(graph: onnx.GraphProto, extra: dict[str, list[onnx.NodeProto]],
                  initializers: set[str]) -> None:
    """Put each value's Q/DQ nodes right after its producer (or first, for graph inputs and
    initializers), keeping the node list topologically sorted."""
    produced_by = {o: k for k, n in enumerate(graph.node) for o in n.output}
    front: list[onnx.NodeProto] = []
    after: dict[int, list[onnx.NodeProto]] = {}
    for value, nodes in extra.items():
        k = produced_by.get(value)
        if k is None:
            front += nodes
        else:
            after.setdefault(k, []).extend(nodes)
    ordered = list(front)
    for k, node in enumerate(graph.node):
        ordered.append(node)
        ordered += after.get(k, [])
    del graph.node[:]
    graph.node.extend(ordered)

