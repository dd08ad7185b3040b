"""Layout conversion for EPs that prefer NHWC (``get_preferred_data_layout``).

onnxruntime's layout transformer rewrites each layout-sensitive node an NHWC EP claimed into
domain ``com.ms.internal.nhwc`` with Transposes around it, asking
``should_convert_data_layout_for_op`` first. The adapter does the same at the fused node's
boundary:

- a claimed node of :data:`CONVERTIBLE` (its data is input 0 and output 0 only: Conv, the
  pools, BatchNormalization, ...) with a rank-4 input is converted unless the EP answers
  ``False``; the EP's sub-model then holds it in domain :data:`NHWC_DOMAIN` with its data
  ports' shapes in NHWC order (weights, biases and statistics stay as ONNX defines them);
- the other nodes of such a group must be unary elementwise ops (:data:`AGNOSTIC`), which
  run on NHWC data unchanged;
- at run time the group's rank-4 data inputs are transposed to NHWC before ``compute`` and
  its rank-4 data outputs back to NCHW after it.

Refused, with :class:`~aioinfer.errors.UnsupportedOperationError` naming the node: a group
mixing a converted node with an op whose meaning depends on the layout (a binary op with a
per-channel constant, Concat, Reshape, ...), and a layout-sensitive op that is not in
:data:`CONVERTIBLE` (Resize, GridSample, MaxUnpool: layout in more than their data ports)
for which the EP answers ``True``; for those the answer ``None`` keeps the node NCHW.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import onnx

from ...errors import UnsupportedOperationError
from ...model import Model
from .api import Ep, OrtEpDataLayout

NHWC_DOMAIN = "com.ms.internal.nhwc"
CONVERTIBLE = frozenset({
    "AveragePool", "BatchNormalization", "Conv", "ConvInteger", "ConvTranspose", "DepthToSpace",
    "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "InstanceNormalization", "LpPool",
    "LRN", "MaxPool", "QLinearConv", "SpaceToDepth"})
SENSITIVE = CONVERTIBLE | {"Resize", "GridSample", "MaxUnpool"}
AGNOSTIC = frozenset({
    "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Erf",
    "Softplus", "Softsign", "Identity", "LeakyRelu", "Elu", "Selu", "Celu", "HardSigmoid",
    "HardSwish", "Clip", "Floor", "Ceil", "Round", "Sign", "Cast"})
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


@dataclass(frozen=True)
class LayoutPlan:
    """What the adapter transposes around one fused node: the positions of its inputs
    (NCHW -> NHWC) and outputs (NHWC -> NCHW)."""

    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


def _rank(model: Model, name: str) -> int | None:
    kind = model.value_type(name)
    if kind is None or not kind.HasField("tensor_type") or not kind.tensor_type.HasField(
            "shape"):
        return None
    return len(kind.tensor_type.shape.dim)


def _std(node: onnx.NodeProto) -> bool:
    return node.domain in ("", "ai.onnx")


def plan(ep: Ep, model: Model, nodes: Sequence[str], ins: Sequence[str],
         outs: Sequence[str], device: str) -> tuple[set[str], LayoutPlan] | None:
    """The nodes of one group to convert and the transposes around it, or ``None`` (the
    group runs as the model has it)."""
    if ep.get_preferred_data_layout() != OrtEpDataLayout.NHWC:
        return None
    members = set(nodes)
    group = [n for n in model.proto.graph.node if n.name in members]
    convert: set[str] = set()
    for node in group:
        if not _std(node) or node.op_type not in SENSITIVE or not node.input \
                or _rank(model, node.input[0]) != 4:
            continue
        answer = ep.should_convert_data_layout_for_op(node.domain or "", node.op_type,
                                                      OrtEpDataLayout.NHWC)
        if answer is False:
            continue
        if node.op_type not in CONVERTIBLE or len([o for o in node.output if o]) != 1:
            if answer is None:
                continue  # the adapter decides: kept NCHW
            raise UnsupportedOperationError(
                f"{device}: the EP asks for {node.op_type} node {node.name!r} in NHWC; the "
                "adapter converts only ops whose layout is in input 0 and output 0 "
                f"({', '.join(sorted(CONVERTIBLE))})", node=node.name, op_type=node.op_type,
                device=device)
        convert.add(node.name)
    if not convert:
        return None
    data: set[str] = set()  # values in NHWC inside the group
    for node in group:
        if node.name in convert:
            data.update((node.input[0], node.output[0]))
        elif _std(node) and node.op_type in AGNOSTIC:
            data.update((node.input[0], node.output[0]))
        else:
            raise UnsupportedOperationError(
                f"{device}: the EP prefers NHWC and its group fuses {node.op_type} node "
                f"{node.name!r} with layout-converted nodes ({', '.join(sorted(convert))}); "
                "the adapter converts groups of layout-sensitive and unary elementwise ops "
                "only", node=node.name, op_type=node.op_type, device=device)
    for node in group:  # a value read both as data and as another input (weights) cannot be
        for k, name in enumerate(node.input):  # in two layouts at once
            is_data = k == 0 and (node.name in convert or node.op_type in AGNOSTIC)
            if name in data and not is_data:
                raise UnsupportedOperationError(
                    f"{device}: value {name!r} is read in NHWC and in its own layout (node "
                    f"{node.name!r}): the adapter cannot convert this group", node=node.name,
                    op_type=node.op_type, device=device)
    # every rank-4 value of the chain is data; a rank-3 input of an agnostic op is not
    layout = LayoutPlan(tuple(k for k, v in enumerate(ins) if v in data and _rank(model, v) == 4),
                        tuple(k for k, v in enumerate(outs)
                              if v in data and _rank(model, v) == 4))
    return convert, layout


def rewrite(sub: Model, convert: set[str], layout: LayoutPlan) -> Model:
    """``sub`` (the group's sub-model) with the converted nodes in :data:`NHWC_DOMAIN` and its
    transposed ports' shapes in NHWC order."""
    proto = onnx.ModelProto()
    proto.CopyFrom(sub.proto)
    graph = proto.graph
    for node in graph.node:
        if node.name in convert:
            node.domain = NHWC_DOMAIN
    if not any(o.domain == NHWC_DOMAIN for o in proto.opset_import):
        proto.opset_import.append(onnx.helper.make_opsetid(NHWC_DOMAIN, 1))
    real_inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    for ports, picked in ((real_inputs, layout.inputs), (list(graph.output), layout.outputs)):
        for k in picked:
            dims = ports[k].type.tensor_type.shape.dim
            copies = [onnx.TensorShapeProto.Dimension() for _ in dims]
            for c, d in zip(copies, dims, strict=True):
                c.CopyFrom(d)
            for slot, src in enumerate(TO_NHWC):
                dims[slot].CopyFrom(copies[src])
    del graph.value_info[:]  # intermediate types were NCHW
    return Model(proto)
