"""Constant folding: nodes whose inputs are all compile-time constants become constants.

This runs before fusion so that weights built by nodes (``ConstantOfShape`` weights, shape
arithmetic on static shapes, ``Constant`` nodes) are plain arrays the fusion passes can read.
"""

from __future__ import annotations

from ....graph.ir import has_subgraph
from .ir import Evaluator, GraphIR


def fold_constants(ir: GraphIR, evaluate: Evaluator) -> int:
    """Fold every foldable node with constant inputs; return how many were folded."""
    folded = []
    for node, opsets in ir.pairs():
        if has_subgraph(node) or not all(not i or i in ir.constants for i in node.input):
            continue
        if any(o in ir.keep for o in node.output) and not node.input:
            continue  # a graph output made by a Constant: leave it to the compiler
        outputs = evaluate(node, opsets, [ir.constants[i] if i else None for i in node.input])
        if outputs is None:
            continue
        for name, value in zip(node.output, outputs, strict=True):
            if name:
                ir.constants[name] = value
        folded.append(node)
    ir.remove(folded)
    return len(folded)
