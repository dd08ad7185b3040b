"""ShuffleNet's channel shuffle ``Reshape -> Transpose -> Reshape`` becomes one node.

``Reshape(x, [N, G, K, *S]) -> Transpose(perm=[0, 2, 1, ...]) -> Reshape([N, K*G, *S])`` is
three kernel calls (the last one the copy); the fused ``ChannelShuffle`` (domain ``aioinfer``)
is one strided copy. Both targets must be constants with no ``0`` or ``-1`` entries and the
intermediate values read once only.

``absorb_channel_shuffle`` (after ``fuse_products``) then moves a shuffle read only by a
``FusedConv`` with a window larger than 1x1 into that convolution, which shuffles while it
copies its input into the padded buffer: the shuffle costs no pass of its own.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ....graph.ir import attr
from .ir import FUSED_DOMAIN, GraphIR, single_use

_STD = ("", "ai.onnx")


def _target(ir: GraphIR, node: onnx.NodeProto | None) -> list[int] | None:
    """The constant, fully explicit target shape of a Reshape node."""
    if node is None or node.op_type != "Reshape" or node.domain not in _STD \
            or len(node.input) != 2:
        return None
    value = ir.constants.get(node.input[1])
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu" or value.ndim != 1:
        return None
    shape = [int(v) for v in value]
    return shape if all(v > 0 for v in shape) else None


def _match(ir: GraphIR, uses, first: onnx.NodeProto):
    """(x, 5-D shape, the three nodes) for a channel shuffle starting at Reshape ``first``."""
    shape = _target(ir, first)
    if shape is None or len(shape) < 3 or not single_use(ir, uses, first.output[0]):
        return None
    perm = [0, 2, 1, *range(3, len(shape))]
    tr = uses[first.output[0]][0]
    if tr.op_type != "Transpose" or tr.domain not in _STD or list(attr(tr, "perm", [])) != perm:
        return None
    if not single_use(ir, uses, tr.output[0]):
        return None
    last = uses[tr.output[0]][0]
    merged = [shape[0], shape[1] * shape[2], *shape[3:]]
    if _target(ir, last) != merged or last.input[0] != tr.output[0]:
        return None
    return first.input[0], shape, (first, tr, last)


def fuse_channel_shuffle(ir: GraphIR) -> int:
    """Rewrite every channel shuffle; return how many."""
    done = 0
    for node in list(ir.nodes):
        if node.op_type != "Reshape" or all(n is not node for n in ir.nodes):
            continue
        found = _match(ir, ir.consumers(), node)
        if found is None:
            continue
        x, shape, (first, tr, last) = found
        fused = helper.make_node("ChannelShuffle", [x], list(last.output),
                                 name=last.name or last.output[0], domain=FUSED_DOMAIN,
                                 shape=shape)
        index = next(i for i, n in enumerate(ir.nodes) if n is last)
        ir.nodes[index] = fused
        ir.remove([first, tr])
        done += 1
    return done


def absorb_channel_shuffle(ir: GraphIR) -> int:
    """Move each ChannelShuffle read only by a windowed FusedConv (as its input) into it."""
    done = 0
    uses = ir.consumers()
    for node in list(ir.nodes):
        if node.op_type != "ChannelShuffle" or node.domain != FUSED_DOMAIN:
            continue
        y = node.output[0]
        if not single_use(ir, uses, y):
            continue
        conv = uses[y][0]
        w = ir.constants.get(conv.input[1]) if len(conv.input) > 1 else None
        if (conv.op_type != "FusedConv" or conv.domain != FUSED_DOMAIN or conv.input[0] != y
                or not isinstance(w, np.ndarray) or not any(k > 1 for k in w.shape[2:])
                or attr(conv, "shuffle") is not None):
            continue
        conv.input[0] = node.input[0]
        conv.attribute.append(helper.make_attribute("shuffle", list(attr(node, "shape"))))
        ir.remove([node])
        done += 1
    return done
