"""Collapse chains of per-channel affine ops into one ``ChannelAffine`` node.

Pre-activation networks (DenseNet: ``Concat -> BatchNormalization -> Mul -> Add -> Relu``)
apply several per-channel scales and shifts in a row that no convolution can absorb; each is a
full pass over the feature map with a fresh output. ``y = x * a + c`` (composed in float64,
rounded once) followed by an optional activation is one in-place pass per op.

A link is an inference BatchNormalization, or a Mul/Add/Sub (``x - const``) by a float
constant that is a scalar or varies along axis 1 only (the input's rank must be known).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper

from ....graph.ir import attr
from .fuse import _activation
from .ir import FUSED_DOMAIN, GraphIR, as_float, single_use
from .winograd import ShapeOf

_STD = ("", "ai.onnx")


def _per_channel(value: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray | None:
    """``value`` as a (C,) or (1,) float64 array if, against an input of ``shape``, it
    varies along axis 1 only and does not broadcast the input to a larger shape."""
    if value.size == 1:
        return value.astype(np.float64).reshape(1) if value.ndim <= len(shape or ()) else None
    if shape is None or value.ndim > len(shape) or len(shape) < 2:
        return None
    dims = (1,) * (len(shape) - value.ndim) + value.shape
    if dims[0] != 1 or dims[1] != shape[1] or any(d != 1 for d in dims[2:]):
        return None
    return value.astype(np.float64).reshape(-1)


def _bn(ir: GraphIR, node: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
    if len(node.input) < 5 or any(node.output[1:]):
        return None
    if attr(node, "training_mode", 0) or attr(node, "spatial", 1) != 1:
        return None
    params = [as_float(ir.constants.get(n)) for n in node.input[1:5]]
    if any(p is None or p.ndim != 1 for p in params):
        return None
    scale, bias, mean, var = (p.astype(np.float64) for p in params)  # type: ignore[union-attr]
    a = scale / np.sqrt(var + attr(node, "epsilon", 1e-5))
    return a, bias - mean * a


Affine = tuple[np.ndarray, np.ndarray, np.dtype]  # scale, shift (float64), the value dtype


def _link(ir: GraphIR, node: onnx.NodeProto, x: str,
          shape: tuple[int, ...] | None) -> Affine | None:
    """(scale, shift, dtype) of ``node`` applied to its input ``x``, or ``None``."""
    if node.domain not in _STD or x not in node.input:
        return None
    if node.op_type == "BatchNormalization":
        found = _bn(ir, node) if node.input[0] == x else None
        scale = as_float(ir.constants.get(node.input[1]))
        return None if found is None or scale is None else (*found, scale.dtype)
    if node.op_type not in ("Mul", "Add", "Sub") or len(node.input) != 2:
        return None
    if node.op_type == "Sub" and node.input[0] != x:
        return None
    other = node.input[1] if node.input[0] == x else node.input[0]
    value = as_float(ir.constants.get(other))
    if other == x or value is None:
        return None
    v = _per_channel(value, shape)
    if v is None:
        return None
    if node.op_type == "Mul":
        return v, np.zeros(1), value.dtype
    return np.ones(1), (v if node.op_type == "Add" else -v), value.dtype


def _start(ir: GraphIR, node: onnx.NodeProto) -> str | None:
    """The variable input of a candidate first link."""
    if node.op_type == "BatchNormalization":
        return node.input[0]
    variable = [i for i in node.input if i not in ir.constants]
    return variable[0] if len(variable) == 1 and len(node.input) == 2 else None


def _collapse(ir: GraphIR, uses, start: onnx.NodeProto, shape_of: ShapeOf | None,
              ) -> onnx.NodeProto | None:
    x = _start(ir, start)
    if x is None:
        return None
    shape = shape_of(x) if shape_of is not None else None
    first = _link(ir, start, x, shape)
    if first is None:
        return None
    a, c, dtype = first
    chain = [start]
    attrs: dict[str, Any] = {}
    while single_use(ir, uses, chain[-1].output[0]):
        nxt = uses[chain[-1].output[0]][0]
        link = _link(ir, nxt, chain[-1].output[0], shape)
        if link is None or link[2] != dtype:
            act = _activation(ir, nxt) if link is None else None
            if act is not None:
                attrs.update(act)
                chain.append(nxt)
            break
        a, c = a * link[0], c * link[0] + link[1]
        chain.append(nxt)
    if len(chain) < 2 and start.op_type != "BatchNormalization":
        return None  # a lone Mul or Add is already one pass
    size = max(a.size, c.size)
    names = []
    for tag, v in (("scale", a), ("shift", c)):
        name = f"{chain[-1].output[0]}/affine_{tag}"
        ir.constants[name] = np.broadcast_to(v, (size,)).astype(dtype)
        names.append(name)
    fused = helper.make_node("ChannelAffine", [x, *names], [chain[-1].output[0]],
                             name=start.name or chain[-1].output[0], domain=FUSED_DOMAIN,
                             **attrs)
    index = next(i for i, n in enumerate(ir.nodes) if n is chain[-1])
    ir.nodes[index] = fused
    ir.remove(chain[:-1])
    return fused


def fuse_affine(ir: GraphIR, shape_of: ShapeOf | None = None) -> int:
    """Collapse every per-channel affine chain; return the number of fused nodes made."""
    made = 0
    gone: set[int] = set()
    for node in list(ir.nodes):
        if id(node) in gone or node.domain not in _STD or node.op_type not in (
                "BatchNormalization", "Mul", "Add", "Sub"):
            continue
        before = {id(n) for n in ir.nodes}
        if _collapse(ir, ir.consumers(), node, shape_of) is not None:
            gone |= before - {id(n) for n in ir.nodes}
            made += 1
    return made


def fold_affine_into_conv(ir: GraphIR) -> int:
    """A ``ChannelAffine`` right after a plain ``FusedConv`` (no residual, no activation) scales
    the conv's weights and bias instead; its activation moves onto the conv."""
    producers, uses = ir.producers(), ir.consumers()
    folded = []
    for node in ir.nodes:
        if node.op_type != "ChannelAffine" or node.domain != FUSED_DOMAIN:
            continue
        conv = producers.get(node.input[0])
        if conv is None or conv.op_type != "FusedConv" or conv.domain != FUSED_DOMAIN:
            continue
        if not single_use(ir, uses, node.input[0]) or attr(conv, "activation", ""):
            continue
        if len(conv.input) > 3 and conv.input[3]:
            continue  # the residual is added before the affine: it would be scaled too
        w = as_float(ir.constants.get(conv.input[1]))
        has_b = len(conv.input) > 2 and bool(conv.input[2])
        b = as_float(ir.constants.get(conv.input[2])) if has_b else None
        if w is None or (has_b and b is None):
            continue
        a = ir.constants[node.input[1]].astype(np.float64)
        c = ir.constants[node.input[2]].astype(np.float64)
        a = np.broadcast_to(a, (w.shape[0],))
        scaled = (w.astype(np.float64) * a.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
        bias = ((0.0 if b is None else b.astype(np.float64)) * a + c).astype(w.dtype)
        base = node.output[0]
        ir.constants[f"{base}/affine_w"] = scaled
        ir.constants[f"{base}/affine_b"] = np.broadcast_to(bias, (w.shape[0],)).copy()
        conv.input[1] = f"{base}/affine_w"
        while len(conv.input) < 3:
            conv.input.append("")
        conv.input[2] = f"{base}/affine_b"
        conv.attribute.extend(a_ for a_ in node.attribute)
        conv.output[0] = node.output[0]
        folded.append(node)
    ir.remove(folded)
    return len(folded)
