"""Cancel transposes: Transpose(Transpose(x, p), q) is one Transpose, or none at all."""

from __future__ import annotations

from typing import TypeGuard

import onnx
from onnx import helper

from ....graph.ir import attr, has_subgraph
from .ir import GraphIR

_STD = ("", "ai.onnx")


def _is_transpose(node: onnx.NodeProto | None) -> TypeGuard[onnx.NodeProto]:
    return node is not None and node.op_type == "Transpose" and node.domain in _STD


def cancel_transposes(ir: GraphIR) -> int:
    """Merge chained transposes and drop identity ones; return the nodes removed."""
    removed = 0
    changed = True
    while changed:
        changed = False
        producers, uses = ir.producers(), ir.consumers()
        for node in ir.nodes:
            if not _is_transpose(node) or attr(node, "perm") is None:
                continue
            inner = producers.get(node.input[0])
            if _is_transpose(inner) and attr(inner, "perm") is not None:
                p, q = list(attr(inner, "perm")), list(attr(node, "perm"))
                node.input[0] = inner.input[0]
                del node.attribute[:]
                node.attribute.append(helper.make_attribute("perm", [p[i] for i in q]))
                if not uses.get(inner.output[0], [])[1:] and inner.output[0] not in ir.keep:
                    ir.remove([inner])
                    removed += 1
                changed = True
                break
            perm = list(attr(node, "perm"))
            out = node.output[0]
            if perm == sorted(perm) and out not in ir.keep and not any(
                has_subgraph(u) for u in uses.get(out, ())
            ):
                ir.rename_uses(out, node.input[0])
                ir.remove([node])
                removed += 1
                changed = True
                break
    return removed
