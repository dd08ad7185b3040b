"""Fold an inference BatchNormalization into the Conv or Gemm that feeds it.

``BN(y) = y * a + c`` per channel, with ``a = scale / sqrt(var + eps)`` and
``c = bias - mean * a``; scaling the producer's weights by ``a`` along the output channel and
its bias into ``bias * a + c`` gives the same result with one op fewer.
"""

from __future__ import annotations

import numpy as np
import onnx

from ....graph.ir import attr
from .ir import GraphIR, as_float, single_use


def _bn_affine(ir: GraphIR, bn: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
    if len(bn.input) < 5 or (len(bn.output) > 1 and any(bn.output[1:])):
        return None
    params = [as_float(ir.constants.get(n)) for n in bn.input[1:5]]
    if any(p is None or p.ndim != 1 for p in params):
        return None
    if attr(bn, "training_mode", 0) or attr(bn, "spatial", 1) != 1:
        return None
    scale, bias, mean, var = (p.astype(np.float64) for p in params)  # type: ignore[union-attr]
    a = scale / np.sqrt(var + attr(bn, "epsilon", 1e-5))
    return a, bias - mean * a


def _fold_conv(ir: GraphIR, conv: onnx.NodeProto, a: np.ndarray, c: np.ndarray) -> bool:
    w = as_float(ir.constants.get(conv.input[1]))
    if w is None or w.shape[0] != a.shape[0]:
        return False
    b = ir.constants.get(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else None
    if len(conv.input) > 2 and conv.input[2] and b is None:
        return False
    w2 = (w * a.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
    b2 = ((0.0 if b is None else b.astype(np.float64)) * a + c).astype(w.dtype)
    _set_inputs(ir, conv, [conv.input[0], _new_const(ir, conv, "w", w2),
                           _new_const(ir, conv, "b", b2)])
    return True


def _fold_gemm(ir: GraphIR, gemm: onnx.NodeProto, a: np.ndarray, c: np.ndarray) -> bool:
    w = as_float(ir.constants.get(gemm.input[1]))
    if w is None or w.ndim != 2 or attr(gemm, "transA", 0):
        return False
    trans_b = attr(gemm, "transB", 0)
    if w.shape[0 if trans_b else 1] != a.shape[0]:
        return False
    has_c = len(gemm.input) > 2 and bool(gemm.input[2])
    bias = ir.constants.get(gemm.input[2]) if has_c else None
    if has_c and (bias is None or bias.size not in (1, a.shape[0]) or bias.ndim > 1):
        return False
    alpha, beta = attr(gemm, "alpha", 1.0), attr(gemm, "beta", 1.0)
    scale = a * alpha
    w2 = w * (scale[:, None] if trans_b else scale[None, :])
    b0 = 0.0 if bias is None else bias.astype(np.float64) * beta
    b2 = (b0 * a + c).astype(w.dtype)
    _set_inputs(ir, gemm, [gemm.input[0], _new_const(ir, gemm, "w", w2.astype(w.dtype)),
                           _new_const(ir, gemm, "b", b2)])
    for a_ in list(gemm.attribute):
        if a_.name in ("alpha", "beta"):
            gemm.attribute.remove(a_)
    return True


def _set_inputs(ir: GraphIR, node: onnx.NodeProto, inputs: list[str]) -> None:
    del node.input[:]
    node.input.extend(inputs)


def _new_const(ir: GraphIR, node: onnx.NodeProto, tag: str, value: np.ndarray) -> str:
    base = f"{node.output[0]}/bn_folded_{tag}"
    name, k = base, 0
    while name in ir.constants:
        k += 1
        name = f"{base}{k}"
    ir.constants[name] = value
    return name


def fold_batchnorm(ir: GraphIR) -> int:
    """Fold each BatchNormalization whose input comes from a Conv/Gemm used only by it."""
    producers, uses = ir.producers(), ir.consumers()
    removed = []
    for bn in list(ir.nodes):
        if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx"):
            continue
        src = producers.get(bn.input[0])
        if src is None or src.domain not in ("", "ai.onnx") or src.op_type not in ("Conv", "Gemm"):
            continue
        if not single_use(ir, uses, bn.input[0]) or len(src.input) < 2:
            continue
        affine = _bn_affine(ir, bn)
        if affine is None:
            continue
        fold = _fold_conv if src.op_type == "Conv" else _fold_gemm
        if not fold(ir, src, *affine):
            continue
        src.output[0] = bn.output[0]
        removed.append(bn)
    ir.remove(removed)
    return len(removed)

