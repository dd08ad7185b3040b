"""Strength reduction of Pow by a constant: x**2 -> x*x and x**3 -> x*x*x.

Exporters write GELU's ``x**3`` and LayerNorm's ``(x - mean)**2`` as Pow by a constant; a
general float power is an order of magnitude slower than a multiply.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from .ir import GraphIR

_STD = ("", "ai.onnx")


def _exponent(ir: GraphIR, node: onnx.NodeProto) -> float | None:
    value = ir.constants.get(node.input[1]) if len(node.input) == 2 else None
    if not isinstance(value, np.ndarray) or value.size != 1 or value.ndim > 0:
        return None  # a shaped exponent could broadcast x to a larger shape
    return float(value)


def _replacement(node: onnx.NodeProto, power: float) -> list[onnx.NodeProto] | None:
    x, y, name = node.input[0], node.output[0], node.name or node.output[0]
    if power == 2.0:
        return [helper.make_node("Mul", [x, x], [y], name=name)]
    if power == 3.0:
        sq = f"{y}/square"
        return [helper.make_node("Mul", [x, x], [sq], name=f"{name}/square"),
                helper.make_node("Mul", [sq, x], [y], name=name)]
    return None


def reduce_pow(ir: GraphIR) -> int:
    """Rewrite each Pow by a scalar constant 2 or 3 (exact for every base type)."""
    done = 0
    nodes, opsets = [], []
    for node, node_opsets in ir.pairs():
        power = None
        if node.op_type == "Pow" and node.domain in _STD:
            power = _exponent(ir, node)
        new = _replacement(node, power) if power is not None else None
        if new is None:
            nodes.append(node)
            opsets.append(node_opsets)
            continue
        nodes.extend(new)
        opsets.extend([node_opsets] * len(new))
        done += 1
    ir.nodes, ir.opsets = nodes, opsets
    return done
