"""GELU written out as elementwise ops becomes one ``Gelu`` node (domain ``aioinfer``).

Exporters spell GELU as five to nine nodes, each a full pass over the activation and a kernel
call of its own:

* erf form (BERT): ``h * (erf(h / sqrt 2) + 1) * 0.5`` (or ``h * 0.5`` first),
* tanh form (GPT-2): ``0.5 h (1 + tanh(sqrt(2/pi) (h + 0.044715 h^3)))``, after ``reduce_pow``
  turned ``h^3`` into two multiplies.

The fused node runs the blocked kernel, and ``fuse_products`` can then absorb it into the
epilogue of the MatMul that makes ``h``. Every intermediate value must be read once only and
every constant must be a scalar (a shaped constant could broadcast ``h`` to a larger shape).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper

from .ir import FUSED_DOMAIN, GraphIR, single_use

_STD = ("", "ai.onnx")
_SQRT2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class _Match:
    """Matching state: the graph, its uses and producers, and the nodes taken so far."""

    def __init__(self, ir: GraphIR, uses: Mapping[str, list[onnx.NodeProto]],
                 producers: Mapping[str, onnx.NodeProto]) -> None:
        self.ir, self.uses, self.producers = ir, uses, producers
        self.taken: list[onnx.NodeProto] = []

    def scalar(self, name: str) -> float | None:
        value = self.ir.constants.get(name)
        if isinstance(value, np.ndarray) and value.size == 1 and value.ndim == 0 \
                and value.dtype.kind == "f":
            return float(value)
        return None

    def op(self, name: str, op_type: str) -> onnx.NodeProto | None:
        """The producer of ``name`` if it is a standard ``op_type`` node and ``name`` is read
        once only."""
        node = self.producers.get(name)
        if (node is None or node.op_type != op_type or node.domain not in _STD
                or len(node.input) != 2 or not single_use(self.ir, self.uses, name)):
            return None
        return node

    def sole_consumer(self, name: str, op_type: str) -> onnx.NodeProto | None:
        if not single_use(self.ir, self.uses, name):
            return None
        node = self.uses[name][0]
        if node.op_type != op_type or node.domain not in _STD or len(node.input) != 2:
            return None
        return node

    def split(self, node: onnx.NodeProto, known: str) -> str:
        """The input of binary ``node`` that is not ``known``."""
        return node.input[1] if node.input[0] == known else node.input[0]

    def by_constant(self, node: onnx.NodeProto | None, value: float) -> str | None:
        """For ``node`` = x op c with scalar c close to ``value``, x; else ``None`` (callers
        add ``node`` to :attr:`taken` once their whole pattern matched)."""
        if node is None:
            return None
        for x, c in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
            got = self.scalar(c)
            if got is not None and math.isclose(got, value, rel_tol=1e-4):
                return x
        return None


def _erf_source(m: _Match, erf: onnx.NodeProto) -> str | None:
    """h for erf(h / sqrt 2) or erf(h * (1 / sqrt 2))."""
    div = m.op(erf.input[0], "Div")
    if div is not None:
        got = m.scalar(div.input[1])
        if got is not None and math.isclose(got, _SQRT2, rel_tol=1e-4):
            m.taken.append(div)
            return div.input[0]
        return None
    mul = m.op(erf.input[0], "Mul")
    h = m.by_constant(mul, 1.0 / _SQRT2)
    if h is not None and mul is not None:
        m.taken.append(mul)
    return h


def _tanh_source(m: _Match, tanh: onnx.NodeProto) -> str | None:
    """h for tanh(sqrt(2/pi) (h + 0.044715 h h h))."""
    scale = m.op(tanh.input[0], "Mul")
    inner = m.by_constant(scale, _SQRT_2_OVER_PI)
    add = m.op(inner, "Add") if inner else None
    if add is None:
        return None
    for h, cubic in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
        coef = m.op(cubic, "Mul")
        cube = m.by_constant(coef, 0.044715)
        mul = m.op(cube, "Mul") if cube else None
        if mul is None or h not in mul.input:
            continue
        sq = m.op(m.split(mul, h), "Mul")
        if sq is not None and list(sq.input) == [h, h]:
            m.taken += [n for n in (scale, add, coef, mul, sq) if n is not None]
            return h
    return None


def _half_product(m: _Match, one_plus: str, h: str) -> onnx.NodeProto | None:
    """The node computing 0.5 h (1 + f) from ``one_plus`` = 1 + f: ``(h * 0.5) * one_plus``,
    ``(h * one_plus) * 0.5`` or ``h * (one_plus * 0.5)``."""
    mul = m.sole_consumer(one_plus, "Mul")
    if mul is None:
        return None
    other = m.split(mul, one_plus)
    if other == h:  # (h * one_plus) * 0.5
        last = m.sole_consumer(mul.output[0], "Mul")
        if m.by_constant(last, 0.5) != mul.output[0]:
            return None
        m.taken.append(mul)
        return last
    half = m.op(other, "Mul")
    if half is not None and m.by_constant(half, 0.5) == h:  # (h * 0.5) * one_plus
        m.taken.append(half)
        return mul
    if m.by_constant(mul, 0.5) == one_plus:  # h * (one_plus * 0.5)
        last = m.sole_consumer(mul.output[0], "Mul")
        if last is None or m.split(last, mul.output[0]) != h:
            return None
        m.taken.append(mul)
        return last
    return None


def _match(m: _Match, node: onnx.NodeProto) -> tuple[str, onnx.NodeProto, str] | None:
    """(h, the node whose output is GELU(h), approximate) for an Erf or Tanh node."""
    if node.domain not in _STD or node.op_type not in ("Erf", "Tanh"):
        return None
    h = _erf_source(m, node) if node.op_type == "Erf" else _tanh_source(m, node)
    add = m.sole_consumer(node.output[0], "Add") if h else None
    if add is None or not h or m.by_constant(add, 1.0) != node.output[0]:
        return None
    m.taken.append(add)
    last = _half_product(m, add.output[0], h)
    if last is None:
        return None
    return h, last, "none" if node.op_type == "Erf" else "tanh"


def fuse_gelu(ir: GraphIR) -> int:
    """Rewrite every written-out GELU into one ``Gelu`` node; return how many."""
    done = 0
    for node in list(ir.nodes):
        if node.op_type not in ("Erf", "Tanh") or all(n is not node for n in ir.nodes):
            continue
        m = _Match(ir, ir.consumers(), ir.producers())
        found = _match(m, node)
        if found is None:
            continue
        h, last, approximate = found
        fused = helper.make_node("Gelu", [h], list(last.output), name=last.name or last.output[0],
                                 domain=FUSED_DOMAIN, approximate=approximate)
        index = next(i for i, n in enumerate(ir.nodes) if n is last)
        ir.nodes[index] = fused  # the last node's place: h is defined before it
        ir.remove([n for n in (node, *m.taken) if n is not last])
        done += 1
    return done
