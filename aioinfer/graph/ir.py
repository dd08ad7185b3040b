"""Reading ONNX nodes and graphs, for any device: attributes, subgraphs, free names.

A node with a ``GRAPH``/``GRAPHS`` attribute (If, Loop, Scan) carries subgraphs that may read
values of the enclosing scope by name; :func:`graph_free_names` lists what a graph reads but
does not define, and :func:`node_reads` what a node reads, its bodies' captures included.
"""

from __future__ import annotations

from typing import Any

import onnx
from onnx import helper


def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    """The Python value of attribute ``name`` of ``node``, or ``default``."""
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def subgraphs(attribute: onnx.AttributeProto) -> list[onnx.GraphProto]:
    """The graphs an attribute holds (none unless it is ``GRAPH`` or ``GRAPHS``)."""
    if attribute.type == onnx.AttributeProto.GRAPH:
        return [attribute.g]
    if attribute.type == onnx.AttributeProto.GRAPHS:
        return list(attribute.graphs)
    return []


def has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in node.attribute)


def graph_free_names(graph: onnx.GraphProto) -> list[str]:
    """Names a graph reads but does not define itself (its outer-scope references)."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    defined |= {t.values.name for t in graph.sparse_initializer}
    free: dict[str, None] = {}
    for node in graph.node:
        for name in node_reads(node):
            if name and name not in defined:
                free[name] = None
        defined.update(o for o in node.output if o)
    for out in graph.output:
        if out.name not in defined:
            free[out.name] = None
    return list(free)


def captured_names(node: onnx.NodeProto) -> list[str]:
    """The outer-scope names the subgraphs of ``node`` read, each once, in order."""
    names: dict[str, None] = {}
    for attribute in node.attribute:
        for sub in subgraphs(attribute):
            names.update(dict.fromkeys(graph_free_names(sub)))
    return list(names)


def node_reads(node: onnx.NodeProto) -> list[str]:
    """The value names ``node`` reads: its inputs (``""`` for an absent one kept), then the
    free names of its subgraphs (with repeats)."""
    reads = list(node.input)
    for attribute in node.attribute:
        for sub in subgraphs(attribute):
            reads.extend(graph_free_names(sub))
    return reads


def model_interface(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` without nodes and weights: what an imported static model needs to describe
    itself (name, inputs, outputs, opsets, metadata)."""
    out = onnx.ModelProto()
    for name in ("ir_version", "producer_name", "producer_version", "domain", "model_version",
                 "doc_string"):
        setattr(out, name, getattr(proto, name))
    out.opset_import.extend(proto.opset_import)
    out.metadata_props.extend(proto.metadata_props)
    graph = proto.graph
    weights = {t.name for t in graph.initializer} | {s.values.name
                                                      for s in graph.sparse_initializer}
    out.graph.name = graph.name
    out.graph.doc_string = graph.doc_string
    out.graph.input.extend(i for i in graph.input if i.name not in weights)
    out.graph.output.extend(graph.output)
    return out
