"""The graph IR the passes rewrite: nodes in topological order plus compile-time constants.

Nodes stay ``onnx.NodeProto`` (copied from the model, so the model itself is never mutated),
each with the opset versions it compiles with (inlined function bodies bring their own).
Constants are NumPy arrays by value name: initializers and everything folded from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from ....graph.ir import graph_free_names, subgraphs

FUSED_DOMAIN = "aioinfer"

#: Runs one node on constant inputs: ``(node, opsets, inputs) -> outputs``, or ``None`` when
#: the node must not run at compile time (random ops, subgraphs, unknown ops).
Evaluator = Callable[[onnx.NodeProto, Mapping[str, int], Sequence[Any]], "list[Any] | None"]


@dataclass
class GraphIR:
    """A graph being optimised; ``keep`` names values that must survive (graph outputs)."""

    nodes: list[onnx.NodeProto]
    opsets: list[Mapping[str, int]]
    constants: dict[str, Any]
    keep: set[str] = field(default_factory=set)

    @classmethod
    def build(
        cls, nodes: Iterable[tuple[onnx.NodeProto, Mapping[str, int]]],
        constants: dict[str, Any], keep: Iterable[str],
    ) -> GraphIR:
        copied, opsets = [], []
        for node, node_opsets in nodes:
            mine = onnx.NodeProto()
            mine.CopyFrom(node)
            copied.append(mine)
            opsets.append(node_opsets)
        return cls(copied, opsets, dict(constants), set(keep))

    def pairs(self) -> list[tuple[onnx.NodeProto, Mapping[str, int]]]:
        return list(zip(self.nodes, self.opsets, strict=True))

    def consumers(self) -> dict[str, list[onnx.NodeProto]]:
        """Value name -> the nodes reading it (a node reading twice appears twice)."""
        uses: dict[str, list[onnx.NodeProto]] = {}
        for node in self.nodes:
            for name in node.input:
                if name:
                    uses.setdefault(name, []).append(node)
            for attribute in node.attribute:
                for sub in subgraphs(attribute):
                    for name in graph_free_names(sub):
                        uses.setdefault(name, []).append(node)
        return uses

    def producers(self) -> dict[str, onnx.NodeProto]:
        return {o: n for n in self.nodes for o in n.output if o}

    def remove(self, doomed: Iterable[onnx.NodeProto]) -> None:
        ids = {id(n) for n in doomed}
        kept = [(n, o) for n, o in zip(self.nodes, self.opsets, strict=True) if id(n) not in ids]
        self.nodes = [n for n, _ in kept]
        self.opsets = [o for _, o in kept]

    def rename_uses(self, old: str, new: str) -> None:
        """Every node input ``old`` reads ``new`` instead (subgraph captures excluded)."""
        for node in self.nodes:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new

    def is_const(self, name: str) -> bool:
        return name in self.constants

    def opset_of(self, node: onnx.NodeProto) -> int:
        index = next(i for i, n in enumerate(self.nodes) if n is node)
        return self.opsets[index].get(node.domain or "", 0)


def single_use(ir: GraphIR, uses: Mapping[str, list[onnx.NodeProto]], name: str) -> bool:
    """``name`` feeds exactly one node input and is not a graph output."""
    return name not in ir.keep and len(uses.get(name, ())) == 1


def as_float(value: Any) -> np.ndarray | None:
    """``value`` as a floating array, or ``None`` when it is not one."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value
    return None
