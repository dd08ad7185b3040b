"""Fuse Conv / Gemm / MatMul with what follows them into one ``aioinfer`` domain node.

``Conv -> [Add bias] -> [Add/Sum residual] -> [activation]`` becomes ``FusedConv(x, W, B, Z)``,
``Gemm -> [activation]`` becomes ``FusedGemm`` and ``MatMul -> [Add bias] -> [Add residual] ->
[activation]`` becomes ``FusedMatMul(A, B, bias, Z)`` (a transformer's residual adds): the
epilogue runs in place on the product, so the chain costs one output buffer instead of one per
op. Every absorbed value must be read only by the next link of the chain and must not be a
graph output.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper

from ....graph.ir import attr
from .ir import FUSED_DOMAIN, GraphIR, single_use

_STD = ("", "ai.onnx")
_FUSED = {"Conv": "FusedConv", "Gemm": "FusedGemm", "MatMul": "FusedMatMul"}


def _activation(ir: GraphIR, node: onnx.NodeProto, gelu: bool = False
                ) -> dict[str, object] | None:
    """The fused-activation attributes ``node`` stands for, or ``None``.

    Gelu (made by ``passes/gelu.py``) only with ``gelu``: it is not an in-place activation, so
    only kernels that use ``activate``'s result (Gemm, MatMul) can absorb it.
    """
    if gelu and node.domain == FUSED_DOMAIN and node.op_type == "Gelu":
        tanh = attr(node, "approximate", b"none") in (b"tanh", "tanh")  # STRING attrs are bytes
        return {"activation": "GeluTanh" if tanh else "Gelu"}
    if node.domain not in _STD:
        return None
    if node.op_type == "Relu":
        return {"activation": "Relu"}
    if node.op_type == "LeakyRelu":
        return {"activation": "LeakyRelu", "activation_alpha": float(attr(node, "alpha", 0.01))}
    if node.op_type == "Clip":
        return _clip(ir, node)
    return None


def _clip(ir: GraphIR, node: onnx.NodeProto) -> dict[str, object] | None:
    if ir.opset_of(node) < 11:
        lo, hi = attr(node, "min", float("-inf")), attr(node, "max", float("inf"))
    else:
        bounds = []
        for k in (1, 2):
            name = node.input[k] if len(node.input) > k else ""
            if name and name not in ir.constants:
                return None
            bounds.append(float(ir.constants[name]) if name else None)
        lo = float("-inf") if bounds[0] is None else bounds[0]
        hi = float("inf") if bounds[1] is None else bounds[1]
    return {"activation": "Clip", "clip_min": float(lo), "clip_max": float(hi)}


def _bias_of(ir: GraphIR, add: onnx.NodeProto, y: str, channels: int, rank: int | None):
    """The constant bias ``add`` adds to ``y`` as a 1-D (channels,) array, or ``None``.

    ``rank`` is the Conv output's rank (the bias must broadcast along axis 1 only), ``None``
    for a MatMul (the bias must be 1-D, along the last axis).
    """
    if add.op_type != "Add" or add.domain not in _STD or len(add.input) != 2:
        return None
    other = add.input[1] if add.input[0] == y else add.input[0]
    value = ir.constants.get(other)
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or other == y:
        return None
    if value.size not in (1, channels):
        return None
    if rank is None:
        ok = value.ndim == 1
    else:
        dims = list(value.shape)
        ok = len(dims) <= rank and (
            value.size == 1 or (len(dims) == rank - 1 and dims[0] == channels)
            or (len(dims) == rank and dims[0] == 1 and dims[1] == channels))
    if not ok:
        return None
    return np.broadcast_to(value.reshape(-1), (channels,)).copy()


def _residual(ir: GraphIR, node: onnx.NodeProto, y: str) -> str | None:
    if node.domain not in _STD or node.op_type not in ("Add", "Sum") or len(node.input) != 2:
        return None
    other = node.input[1] if node.input[0] == y else node.input[0]
    if other == y or other in ir.constants or not other:
        return None
    return other


class _Chain:
    """Walks the single-use chain after a product node, absorbing links."""

    def __init__(self, ir: GraphIR, uses: Mapping[str, list[onnx.NodeProto]],
                 start: onnx.NodeProto) -> None:
        self.ir, self.uses = ir, uses
        self.tail = start.output[0]
        self.absorbed: list[onnx.NodeProto] = []

    def next(self) -> onnx.NodeProto | None:
        if not single_use(self.ir, self.uses, self.tail):
            return None
        return self.uses[self.tail][0]

    def take(self, node: onnx.NodeProto) -> None:
        self.absorbed.append(node)
        self.tail = node.output[0]


def _channels(ir: GraphIR, node: onnx.NodeProto) -> int | None:
    w = ir.constants.get(node.input[1]) if len(node.input) > 1 else None
    if not isinstance(w, np.ndarray):
        return None
    if node.op_type == "Conv":
        return int(w.shape[0])
    if node.op_type == "Gemm":
        return int(w.shape[0] if attr(node, "transB", 0) else w.shape[-1])
    return int(w.shape[-1]) if w.ndim >= 1 else None


def _fuse_one(ir: GraphIR, uses, node: onnx.NodeProto) -> onnx.NodeProto | None:
    chain = _Chain(ir, uses, node)
    channels = _channels(ir, node)
    inputs = list(node.input)
    extra: dict[str, object] = {}
    bias = None
    nxt = chain.next()
    if nxt is not None and node.op_type in ("Conv", "MatMul") and channels is not None:
        rank = ir.constants[node.input[1]].ndim if node.op_type == "Conv" else None
        bias = _bias_of(ir, nxt, chain.tail, channels, rank)
        if bias is not None:
            chain.take(nxt)
            nxt = chain.next()
    residual = None
    if nxt is not None and node.op_type in ("Conv", "MatMul"):
        residual = _residual(ir, nxt, chain.tail)
        if residual is not None:
            chain.take(nxt)
            nxt = chain.next()
    if nxt is not None:
        act = _activation(ir, nxt, gelu=node.op_type != "Conv")
        if act is not None:
            extra.update(act)
            chain.take(nxt)
    # a lone product is still rewritten: its fused kernel splits the GEMM over the threads
    if bias is not None:
        inputs = _merge_bias(ir, node, inputs, bias)
    if residual is not None or node.op_type == "Conv":
        inputs = (inputs + [""] * 3)[:3] + [residual or ""]
    fused = helper.make_node(_FUSED[node.op_type], inputs, [chain.tail],
                             name=node.name or chain.tail, domain=FUSED_DOMAIN)
    fused.attribute.extend(helper.make_attribute(k, v) for k, v in extra.items())
    # the node's own attributes copied as they are (decoded and re-made, an empty ``pads``
    # list has no type make_attribute can infer)
    fused.attribute.extend(a for a in node.attribute if a.name not in extra)
    last = chain.absorbed[-1] if chain.absorbed else node
    index = next(i for i, n in enumerate(ir.nodes) if n is last)
    ir.nodes[index] = fused  # the last link's place: every input is defined before it
    ir.remove([n for n in (node, *chain.absorbed) if n is not last])
    return fused


def _merge_bias(ir: GraphIR, node: onnx.NodeProto, inputs: list[str], bias: np.ndarray):
    k = 2
    old = ir.constants.get(inputs[k]) if len(inputs) > k and inputs[k] else None
    if len(inputs) > k and inputs[k] and old is None:
        raise _NotFusable
    total = bias if old is None else (old.reshape(-1) + bias)
    name = f"{node.output[0]}/fused_bias"
    ir.constants[name] = total.astype(bias.dtype)
    return (inputs + [""] * 3)[:2] + [name] + inputs[3:]


class _NotFusable(Exception):
    pass


def fuse_products(ir: GraphIR) -> int:
    """Fuse every Conv/Gemm/MatMul chain; return the number of fused nodes made."""
    made = 0
    for node in list(ir.nodes):
        if node.domain not in _STD or node.op_type not in _FUSED:
            continue
        uses = ir.consumers()
        try:
            fused = _fuse_one(ir, uses, node)
        except _NotFusable:
            continue
        if fused is not None:
            made += 1
    return made
