"""Merge fused convolutions that read the same input with the same window into one.

An Inception module opens with three 1x1 convolutions of the module's input (the 1x1 branch
and the 3x3 and 5x5 reductions): three thin GEMMs (16-128 output channels over 13x13 to 28x28
positions, where BLAS runs at half speed) and three kernel calls. Stacking their weights makes
one GEMM with all the output channels; ``ChannelSplit`` then hands each consumer its channels
as a view. Merged convolutions must agree on every attribute (window, strides, pads, group 1,
activation) and have no residual input or Concat buffer; biases are stacked (zeros where a
convolution had none).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ....graph.ir import attr
from .ir import FUSED_DOMAIN, GraphIR

_PER_CALL = ("shuffle", "into_start")  # attributes of convolutions this pass leaves alone


def _key(ir: GraphIR, node: onnx.NodeProto) -> tuple | None:
    """What a sibling must share with ``node`` to merge with it, or ``None`` if it cannot."""
    if node.op_type != "FusedConv" or node.domain != FUSED_DOMAIN or any(node.input[3:]):
        return None  # a residual input (or a Concat buffer) is per convolution
    w = ir.constants.get(node.input[1])
    has_bias = _has_bias(node)
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f" or (
            has_bias and not isinstance(ir.constants.get(node.input[2]), np.ndarray)):
        return None
    if attr(node, "group", 1) != 1 or any(a.name in _PER_CALL for a in node.attribute):
        return None
    attrs = tuple(sorted((a.name, a.SerializeToString()) for a in node.attribute))
    return (node.input[0], w.shape[1:], w.dtype, attrs)


def _has_bias(node: onnx.NodeProto) -> bool:
    return len(node.input) > 2 and bool(node.input[2])


def merge_sibling_convs(ir: GraphIR) -> int:
    """Merge each set of sibling convolutions; return how many convolutions were removed."""
    groups: dict[tuple, list[int]] = {}
    for index, node in enumerate(ir.nodes):
        key = _key(ir, node)
        if key is not None:
            groups.setdefault(key, []).append(index)
    merged: dict[int, list[onnx.NodeProto]] = {}  # first member's index -> replacement
    doomed: list[onnx.NodeProto] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        nodes = [ir.nodes[i] for i in members]
        first = nodes[0]
        weights = [ir.constants[n.input[1]] for n in nodes]
        biases = [ir.constants[n.input[2]] if _has_bias(n) else np.zeros(w.shape[0], w.dtype)
                  for n, w in zip(nodes, weights, strict=True)]
        base = f"{first.output[0]}/siblings"
        ir.constants[f"{base}/w"] = np.concatenate(weights)
        ir.constants[f"{base}/b"] = np.concatenate(biases).astype(weights[0].dtype)
        conv = helper.make_node("FusedConv", [first.input[0], f"{base}/w", f"{base}/b"],
                                [f"{base}/y"], name=f"{first.name}+siblings",
                                domain=FUSED_DOMAIN)
        conv.attribute.extend(first.attribute)
        split = helper.make_node("ChannelSplit", [f"{base}/y"], [n.output[0] for n in nodes],
                                 name=f"{first.name}/split", domain=FUSED_DOMAIN,
                                 sizes=[int(w.shape[0]) for w in weights])
        merged[members[0]] = [conv, split]
        doomed.extend(nodes[1:])
    if not merged:
        return 0
    nodes, opsets = [], []
    gone = {id(n) for n in doomed}
    for index, (node, node_opsets) in enumerate(zip(ir.nodes, ir.opsets, strict=True)):
        if id(node) in gone:
            continue
        for new in merged.get(index, [node]):
            nodes.append(new)
            opsets.append(node_opsets)
    ir.nodes, ir.opsets = nodes, opsets
    return len(doomed)
