"""LayerNorm written out as elementwise ops becomes one ``LayerNorm`` node (domain ``aioinfer``).

Exporters of hand-written LayerNorms (BERT-style models) emit nine nodes::

    mu = ReduceMean(x, axes=[-1]); d = x - mu; var = ReduceMean(d * d, axes=[-1])
    y = d / Sqrt(var + eps) [* gamma] [+ beta]

(``d * d`` is ``Pow(d, 2)`` before ``reduce_pow``). Each is a kernel call and a full pass; the
fused node is one kernel. Intermediate values must be read only inside the pattern, ``eps`` a
scalar constant and ``gamma``/``beta`` 1-D constants (they broadcast along the last axis only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeGuard

import numpy as np
import onnx
from onnx import helper

from ....graph.ir import attr
from .ir import FUSED_DOMAIN, GraphIR, single_use

_STD = ("", "ai.onnx")
Uses = Mapping[str, list[onnx.NodeProto]]


def _is(node: onnx.NodeProto | None, op_type: str) -> TypeGuard[onnx.NodeProto]:
    return node is not None and node.op_type == op_type and node.domain in _STD


def _last_axis_mean(ir: GraphIR, node: onnx.NodeProto | None) -> bool:
    """``node`` is ReduceMean over the last axis only, keeping dims."""
    if not _is(node, "ReduceMean") or attr(node, "keepdims", 1) != 1:
        return False
    axes = attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = ir.constants.get(node.input[1])
        axes = None if value is None else [int(a) for a in np.asarray(value).reshape(-1)]
    return axes is not None and list(axes) == [-1]


def _only(ir: GraphIR, uses: Uses, name: str, op_type: str) -> onnx.NodeProto | None:
    node = uses[name][0] if single_use(ir, uses, name) else None
    return node if _is(node, op_type) else None


def _const_operand(ir: GraphIR, node: onnx.NodeProto, name: str, ndim: int) -> str | None:
    """The other input of binary ``node`` if it is a float constant of rank ``ndim``."""
    if len(node.input) != 2 or name not in node.input:
        return None
    other = node.input[1] if node.input[0] == name else node.input[0]
    value = ir.constants.get(other)
    ok = isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim == ndim
    return other if ok else None


def _match(ir: GraphIR, uses: Uses, mean: onnx.NodeProto):
    """(x, eps, gamma, beta, the nodes, the last node) for the pattern from ``mean``."""
    x = mean.input[0]
    sub = _only(ir, uses, mean.output[0], "Sub")
    if sub is None or list(sub.input) != [x, mean.output[0]]:
        return None
    d = sub.output[0]
    readers = uses.get(d, [])
    squares = list({id(n): n for n in readers if _is(n, "Mul") and list(n.input) == [d, d]}
                   .values())  # d * d reads d twice
    divs = [n for n in readers if _is(n, "Div") and list(n.input)[0] == d]
    if d in ir.keep or len(squares) != 1 or len(divs) != 1 or len(readers) != 3:
        return None
    sq, div = squares[0], divs[0]
    var = _only(ir, uses, sq.output[0], "ReduceMean")
    if var is None or not _last_axis_mean(ir, var):
        return None
    add = _only(ir, uses, var.output[0], "Add")
    eps = _const_operand(ir, add, var.output[0], 0) if add is not None else None
    sqrt = _only(ir, uses, add.output[0], "Sqrt") if add is not None and eps else None
    if sqrt is None or not eps or list(div.input) != [d, sqrt.output[0]] or \
            not single_use(ir, uses, sqrt.output[0]):
        return None
    nodes, last, gamma, beta = [mean, sub, sq, var, add, sqrt, div], div, "", ""
    mul = _only(ir, uses, div.output[0], "Mul")
    if mul is not None and (name := _const_operand(ir, mul, div.output[0], 1)):
        nodes, last, gamma = [*nodes, mul], mul, name
        shift = _only(ir, uses, mul.output[0], "Add")
        if shift is not None and (name := _const_operand(ir, shift, mul.output[0], 1)):
            nodes, last, beta = [*nodes, shift], shift, name
    return x, float(ir.constants[eps]), gamma, beta, nodes, last


def fuse_layer_norm(ir: GraphIR) -> int:
    """Rewrite every written-out last-axis LayerNorm into one node; return how many."""
    done = 0
    for node in list(ir.nodes):
        if not _last_axis_mean(ir, node) or all(n is not node for n in ir.nodes):
            continue
        found = _match(ir, ir.consumers(), node)
        if found is None:
            continue
        x, eps, gamma, beta, nodes, last = found
        inputs = [x, gamma, beta] if beta else [x, gamma] if gamma else [x]
        fused = helper.make_node("LayerNorm", inputs, list(last.output),
                                 name=last.name or last.output[0], domain=FUSED_DOMAIN,
                                 epsilon=eps)
        index = next(i for i, n in enumerate(ir.nodes) if n is last)
        ir.nodes[index] = fused
        ir.remove([n for n in nodes if n is not last])
        done += 1
    return done
