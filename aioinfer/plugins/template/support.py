"""Which nodes the reference evaluator can run, and how to build one evaluator for a model.

A plugin answers "can you run this node?" twice: in ``query_model`` (per node, so HETERO can
split a graph) and in ``compile_model`` (where an unsupported node is an error that names the
node). Both use :func:`unsupported_reason` here, which follows the lookup that
``ReferenceEvaluator`` itself does when it loads a node's implementation: custom operations
first, then the operator set of the node's domain, then the model's local functions.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun, RuntimeContextError

# Each non-default domain that onnx.reference implements, with the module that loads its ops.
_DOMAIN_LOADERS = {
    "ai.onnx.ml": "onnx.reference.ops.aionnxml",
    "ai.onnx.preview": "onnx.reference.ops.aionnx_preview",
    "ai.onnx.preview.training": "onnx.reference.ops.aionnx_preview_training",
    "experimental": "onnx.reference.ops.experimental",
}

# Implementations that exist but need an optional package at run time.
_OPTIONAL_PACKAGES = {("", "ImageDecoder"): ("PIL", "Pillow")}




def op_key(cls: type[OpRun]) -> tuple[str, str]:
    """The (domain, op_type) that an ``OpRun`` subclass implements."""
    return getattr(cls, "op_domain", ""), cls.__name__


@functools.lru_cache(maxsize=4096)
def _default_domain_reason(domain: str, op_type: str, version: int) -> str | None:
    loader = "onnx.reference.ops" if domain == "" else _DOMAIN_LOADERS.get(domain)
    if loader is None:
        return f"domain {domain!r} has no reference implementation"
    load_op = importlib.import_module(loader).load_op
    # Only the default domain's loader can build an op from its schema's function body.
    extra = {"evaluator_cls": ReferenceEvaluator} if domain == "" else {}
    try:
        load_op(domain, op_type, version, **extra)
    except RuntimeContextError:
        return None  # a context-dependent function body, built when the node is loaded
    except Exception as exc:  # NotImplementedError, RuntimeError, ValueError from onnx
        return f"no reference implementation of {op_type} (opset {version}): {first_line(exc)}"
    return None


def unsupported_reason(
    node: onnx.NodeProto,
    opsets: Mapping[str, int],
    functions: Mapping[tuple[str, str], Any],
    custom_ops: Mapping[tuple[str, str], type[OpRun]],
) -> str | None:
    """Why the reference evaluator cannot run ``node`` (``None`` when it can)."""
    domain = "" if node.domain == "ai.onnx" else node.domain
    key = (domain, node.op_type)
    if key in custom_ops or key in functions:
        return None
    if domain not in opsets:
        return f"the model imports no opset for domain {domain!r}"
    package = _OPTIONAL_PACKAGES.get(key)
    if package is not None and importlib.util.find_spec(package[0]) is None:
        return f"the reference {node.op_type} needs the {package[1]} package, not installed"
    return _default_domain_reason(domain, node.op_type, opsets[domain])


def iter_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of ``graph``, including those of subgraphs (If, Loop, Scan bodies)."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from iter_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from iter_nodes(sub)


def local_functions(model: onnx.ModelProto) -> dict[tuple[str, str], onnx.FunctionProto]:
    """The model's local functions by (domain, name)."""
    return {(f.domain, f.name): f for f in model.functions}


def first_unsupported(
    model: onnx.ModelProto,
    opsets: Mapping[str, int],
    custom_ops: Mapping[tuple[str, str], type[OpRun]],
) -> tuple[onnx.NodeProto, str] | None:
    """The first node (graph, subgraphs, then local function bodies) that cannot run, with
    the reason; ``None`` when every node can run."""
    functions = local_functions(model)
    for node in iter_nodes(model.graph):
        reason = unsupported_reason(node, opsets, functions, custom_ops)
        if reason is not None:
            return node, reason
    for function in model.functions:
        f_opsets = {**opsets, **{o.domain: o.version for o in function.opset_import}}
        for node in function.node:
            reason = unsupported_reason(node, f_opsets, functions, custom_ops)
            if reason is not None:
                return node, reason
    return None


def build_evaluator(
    model: onnx.ModelProto, custom_ops: Sequence[type[OpRun]]
) -> ReferenceEvaluator:
    """A new evaluator of ``model``. Loading every node's implementation happens here, once
    per evaluator, so a request never pays for it."""
    return ReferenceEvaluator(model, new_ops=list(custom_ops) or None)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
