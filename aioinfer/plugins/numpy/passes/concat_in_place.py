"""Let fused convolutions write straight into the output buffer of the Concat that reads them.

``Concat(a, b, ...)`` along the channel axis (SqueezeNet's fire modules, Inception's branches,
DenseNet's growing feature maps) copies every input once more. Here the Concat becomes

- ``Empty`` (domain ``aioinfer``), placed before the first node that writes the buffer;
- each eligible producer, a ``FusedConv`` read only by the Concat, gets the buffer as a fifth
  input and its channel offset as ``into_start``, and writes its result into that slice;
- ``ConcatInto(buffer, parts...)`` in the Concat's place: copies only the parts not written in
  place (``copy_starts``, -1 for the in-place ones) and returns ``buffer[:, :channels]``.

DenseNet's chains ``c_k = Concat(c_{k-1}, conv_k)`` share one buffer sized for the last link:
each link's output is a prefix view of it, so ``c_{k-1}`` is already in place for ``c_k``
(later links write only channels past it, which no reader of ``c_{k-1}`` sees). Without this
every link copies all the features before it again: quadratic in the block's depth.

A Concat with nothing written in place is left alone. Shapes must be static.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

import numpy as np
import onnx
from onnx import helper

from ....graph.ir import attr
from .ir import FUSED_DOMAIN, GraphIR, single_use

ShapeOf = Callable[[str], "tuple[int, ...] | None"]


@dataclass
class _Link:
    """One channel Concat of a chain: per input its channel start and whether it is in place."""

    node: onnx.NodeProto
    shape: tuple[int, ...]
    starts: list[int]
    in_place: list[bool]
    child: _Link | None = None
    parent: _Link | None = field(default=None, repr=False)


def _conv_weight(ir: GraphIR, node: onnx.NodeProto | None) -> np.ndarray | None:
    """The weight of ``node`` if it is a FusedConv that can write into a channel slice."""
    if node is None or node.op_type != "FusedConv" or node.domain != FUSED_DOMAIN:
        return None
    if len(node.input) > 4 or len(node.output) != 1:
        return None
    w = ir.constants.get(node.input[1])
    return w if isinstance(w, np.ndarray) and w.dtype.kind == "f" else None


def _link(ir: GraphIR, concat: onnx.NodeProto, shape_of: ShapeOf,
          uses: dict[str, list[onnx.NodeProto]], producers: dict[str, onnx.NodeProto]
          ) -> _Link | None:
    """``concat`` as a link, when it joins static shapes along axis 1."""
    if concat.op_type != "Concat" or concat.domain not in ("", "ai.onnx"):
        return None
    shape = shape_of(concat.output[0])
    if shape is None or len(shape) < 3 or any(not n for n in concat.input):
        return None
    if attr(concat, "axis", 1) % len(shape) != 1:
        return None
    widths: list[int] = []
    for name in concat.input:
        part = shape_of(name)
        if part is None or len(part) != len(shape):
            return None
        widths.append(part[1])
    starts = [0, *accumulate(widths)][:-1]
    in_place = [single_use(ir, uses, n) and _conv_weight(ir, producers.get(n)) is not None
                for n in concat.input]
    return _Link(concat, tuple(shape), starts, in_place)


def _chain(links: dict[str, _Link], uses: dict[str, list[onnx.NodeProto]], keep: set[str]
           ) -> None:
    """Link each Concat to the one that extends its output as first input (at most one)."""
    for link in links.values():
        first = link.node.input[0]
        parent = links.get(first)
        if parent is None or parent.child is not None or first in keep:
            continue
        if parent.shape[2:] != link.shape[2:] or parent.shape[0] != link.shape[0]:
            continue
        if sum(1 for n in uses.get(first, ()) if n is link.node) != 1:
            continue
        if list(link.node.input).count(first) != 1:
            continue
        parent.child, link.parent = link, parent
        link.in_place[0] = True


def _dtype(ir: GraphIR, producers: dict[str, onnx.NodeProto], chain: list[_Link]
           ) -> np.dtype | None:
    kinds = {w.dtype for link in chain for name in link.node.input
             if (w := _conv_weight(ir, producers.get(name))) is not None}
    return kinds.pop() if len(kinds) == 1 else None


def _rewrite(ir: GraphIR, chain: list[_Link], producers: dict[str, onnx.NodeProto],
             dtype: np.dtype) -> None:
    last = chain[-1]
    buffer = f"{last.node.output[0]}/concat_buffer"
    first = len(ir.nodes)
    for link in chain:
        index = next(i for i, n in enumerate(ir.nodes) if n is link.node)
        first = min(first, index)
        ir.nodes[index] = helper.make_node(
            "ConcatInto", [buffer, *link.node.input], list(link.node.output),
            name=link.node.name or link.node.output[0], domain=FUSED_DOMAIN,
            channels=link.shape[1],
            copy_starts=[-1 if p else s for s, p in zip(link.starts, link.in_place,
                                                        strict=True)])
        for k, (name, start) in enumerate(zip(link.node.input, link.starts, strict=True)):
            if not link.in_place[k] or (k == 0 and link.parent is not None):
                continue
            node = producers[name]
            while len(node.input) < 4:
                node.input.append("")
            node.input.append(buffer)
            node.attribute.append(helper.make_attribute("into_start", start))
            first = min(first, next(i for i, n in enumerate(ir.nodes) if n is node))
    empty = helper.make_node("Empty", [], [buffer], name=buffer, domain=FUSED_DOMAIN,
                             shape=list(last.shape), dtype=np.dtype(dtype).name)
    ir.nodes.insert(first, empty)
    ir.opsets.insert(first, ir.opsets[first])


def write_concat_in_place(ir: GraphIR, shape_of: ShapeOf) -> int:
    """Rewrite every eligible channel Concat; return how many were rewritten."""
    if not any(n.op_type == "Concat" for n in ir.nodes):
        return 0
    uses, producers = ir.consumers(), ir.producers()
    links: dict[str, _Link] = {}
    for node in ir.nodes:
        link = _link(ir, node, shape_of, uses, producers)
        if link is not None:
            links[node.output[0]] = link
    _chain(links, uses, ir.keep)
    done = 0
    for root in [link for link in links.values() if link.parent is None]:
        chain = [root]
        while chain[-1].child is not None:
            chain.append(chain[-1].child)
        if not any(any(link.in_place) for link in chain):
            continue
        dtype = _dtype(ir, producers, chain)
        if dtype is None:
            continue
        _rewrite(ir, chain, producers, dtype)
        done += len(chain)
    return done
