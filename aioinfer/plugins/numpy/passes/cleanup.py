"""Remove nodes that compute nothing at inference: Identity and inference-mode Dropout."""

from __future__ import annotations

from ....graph.ir import has_subgraph
from .ir import GraphIR


def _passthrough(ir: GraphIR, node, uses) -> bool:
    if node.domain not in ("", "ai.onnx"):
        return False
    if node.op_type == "Identity":
        return True
    if node.op_type != "Dropout":
        return False
    mask = node.output[1] if len(node.output) > 1 else ""
    if mask and (mask in ir.keep or uses.get(mask)):
        return False  # the mask is read: keep the kernel that makes it
    if len(node.input) > 2 and node.input[2]:
        mode = ir.constants.get(node.input[2])
        return mode is not None and not bool(mode)
    return True


def remove_passthrough(ir: GraphIR) -> int:
    """Make readers of an Identity/Dropout output read its input; return nodes removed."""
    removed = []
    uses = ir.consumers()
    for node in list(ir.nodes):
        if not _passthrough(ir, node, uses):
            continue
        src, dst = node.input[0], node.output[0]
        if dst in ir.keep or any(has_subgraph(u) for u in uses.get(dst, ())):
            continue  # a graph output keeps its name; subgraph captures keep theirs
        ir.rename_uses(dst, src)
        removed.append(node)
    ir.remove(removed)
    return len(removed)
