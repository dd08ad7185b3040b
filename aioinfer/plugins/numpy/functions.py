"""Inline ONNX functions: model-local FunctionProtos and the function bodies of op schemas.

A call node is replaced by a copy of the function's body in which every value gets a name
unique to that call site (formal inputs and outputs become the node's actual ones), attribute
references (``ref_attr_name``) are bound to the node's attributes or the function's defaults,
and subgraphs inside the body are rewritten the same way. The body's nodes compile with the
function's own opset imports on top of the caller's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping

import onnx
from onnx import AttributeProto, FunctionProto, GraphProto, NodeProto, TypeProto

TypeOf = Callable[[str], "TypeProto | None"]


def _domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


class FunctionExpander:
    """Expands calls of model-local functions and of ops the schema defines as functions."""

    def __init__(self, functions: Iterable[FunctionProto] = ()) -> None:
        self._local = {(_domain(f.domain), f.name, f.overload): f for f in functions}
        self._calls = itertools.count()

    def local(self, node: NodeProto) -> FunctionProto | None:
        """The model-local function ``node`` calls, if any."""
        return self._local.get((_domain(node.domain), node.op_type, node.overload))

    def expand_local(
        self, node: NodeProto, fn: FunctionProto, opsets: Mapping[str, int]
    ) -> tuple[list[NodeProto], dict[str, int]]:
        """The body of local function ``fn`` inlined for ``node``, and its opsets."""
        defaults = {a.name: a for a in fn.attribute_proto}
        return self._inline(node, fn, defaults), _body_opsets(fn, opsets)

    def expand_schema(
        self, node: NodeProto, opsets: Mapping[str, int], type_of: TypeOf
    ) -> tuple[list[NodeProto], dict[str, int]] | None:
        """The schema's function body inlined for ``node``, or ``None`` if it has none."""
        found = schema_function(node, opsets, type_of)
        if found is None:
            return None
        fn, defaults = found
        return self._inline(node, fn, defaults), _body_opsets(fn, opsets)

    def _inline(
        self, node: NodeProto, fn: FunctionProto, defaults: Mapping[str, AttributeProto]
    ) -> list[NodeProto]:
        call = next(self._calls)
        prefix = f"{node.name or node.op_type}#{call}/"
        names: dict[str, str] = {"": ""}
        for formal, actual in zip(fn.input, node.input, strict=False):
            names[formal] = actual
        for formal in fn.input[len(node.input):]:
            names[formal] = ""  # an absent optional input
        passthrough = []  # formal outputs that are formal inputs: copied with an Identity
        for formal, actual in itertools.zip_longest(fn.output, node.output[: len(fn.output)]):
            if formal in fn.input:
                if actual:
                    passthrough.append(onnx.helper.make_node(
                        "Identity", [names[formal]], [actual], name=f"{prefix}{formal}"))
                continue
            names[formal] = actual or prefix + formal

        def rename(name: str) -> str:
            return names.setdefault(name, prefix + name)

        attrs = dict(defaults)
        attrs.update({a.name: a for a in node.attribute})
        body = [_rewrite_node(b, rename, attrs, prefix, i) for i, b in enumerate(fn.node)]
        return body + passthrough


def _body_opsets(fn: FunctionProto, opsets: Mapping[str, int]) -> dict[str, int]:
    merged = dict(opsets)
    merged.update({_domain(o.domain): o.version for o in fn.opset_import})
    return merged


def _rewrite_node(
    node: NodeProto, rename: Callable[[str], str], attrs: Mapping[str, AttributeProto],
    prefix: str, index: int,
) -> NodeProto:
    out = NodeProto()
    out.CopyFrom(node)
    out.name = prefix + (node.name or f"{node.op_type}_{index}")
    out.input[:] = [rename(n) for n in node.input]
    out.output[:] = [rename(n) for n in node.output]
    del out.attribute[:]
    for attr in node.attribute:
        bound = _bind_attribute(attr, rename, attrs, prefix)
        if bound is not None:
            out.attribute.append(bound)
    return out


def _bind_attribute(
    attr: AttributeProto, rename: Callable[[str], str], attrs: Mapping[str, AttributeProto],
    prefix: str,
) -> AttributeProto | None:
    if attr.ref_attr_name:
        source = attrs.get(attr.ref_attr_name)
        if source is None:
            return None  # not given and no default: the attribute is left out
        bound = AttributeProto()
        bound.CopyFrom(source)
        bound.name = attr.name
        return bound
    bound = AttributeProto()
    bound.CopyFrom(attr)
    if attr.type == AttributeProto.GRAPH:
        bound.g.CopyFrom(_rewrite_graph(attr.g, rename, attrs, prefix))
    elif attr.type == AttributeProto.GRAPHS:
        del bound.graphs[:]
        bound.graphs.extend(_rewrite_graph(g, rename, attrs, prefix) for g in attr.graphs)
    return bound


def _rewrite_graph(
    graph: GraphProto, rename: Callable[[str], str], attrs: Mapping[str, AttributeProto],
    prefix: str,
) -> GraphProto:
    """A subgraph of a function body with its names made unique to the call site."""
    out = GraphProto()
    out.CopyFrom(graph)
    for info in itertools.chain(out.input, out.output, out.value_info):
        info.name = rename(info.name)
    for tensor in out.initializer:
        tensor.name = rename(tensor.name)
    for sparse in out.sparse_initializer:
        sparse.values.name = rename(sparse.values.name)
    del out.node[:]
    out.node.extend(
        _rewrite_node(n, rename, attrs, prefix, i) for i, n in enumerate(graph.node)
    )
    return out


def schema_function(
    node: NodeProto, opsets: Mapping[str, int], type_of: TypeOf
) -> tuple[FunctionProto, dict[str, AttributeProto]] | None:
    """The function body the ONNX schema of ``node`` defines for the model's opset, if any.

    Context-dependent bodies need the input types; ``type_of`` gives them (``None`` when
    unknown, in which case no body is returned).
    """
    domain = _domain(node.domain)
    opset = opsets.get(domain)
    if opset is None:
        return None
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, domain)
    except onnx.defs.SchemaError:
        return None
    defaults = {
        name: a.default_value
        for name, a in schema.attributes.items()
        if a.default_value.type != AttributeProto.UNDEFINED
    }
    # onnx's type stubs omit the function-body bindings of OpSchema; they exist at run time.
    if schema.has_function:  # type: ignore[attr-defined]
        body = schema.get_function_with_opset_version(  # type: ignore[attr-defined]
            _pick(schema.function_opset_versions, opset)  # type: ignore[attr-defined]
        )
    elif schema.has_context_dependent_function:  # type: ignore[attr-defined]
        body = _context_dependent(schema, node, opset, defaults, type_of)
        if body is None:
            return None
    else:
        return None
    fn = FunctionProto()
    fn.ParseFromString(body)
    return fn, defaults


def _pick(versions: Iterable[int], opset: int) -> int:
    versions = sorted(versions)
    usable = [v for v in versions if v <= opset]
    return usable[-1] if usable else versions[0]


def _context_dependent(
    schema: onnx.defs.OpSchema, node: NodeProto, opset: int,
    defaults: Mapping[str, AttributeProto], type_of: TypeOf,
) -> bytes | None:
    maybe = [type_of(name) if name else TypeProto() for name in node.input]
    types = [t for t in maybe if t is not None]
    if len(types) != len(maybe):
        return None
    full = NodeProto()
    full.CopyFrom(node)
    given = {a.name for a in node.attribute}
    full.attribute.extend(a for name, a in defaults.items() if name not in given)
    version = _pick(schema.context_dependent_function_opset_versions, opset)  # type: ignore[attr-defined]
    try:
        body = schema.get_context_dependent_function_with_opset_version(  # type: ignore[attr-defined]
            version, full.SerializeToString(), [t.SerializeToString() for t in types]
        )
    except Exception:  # noqa: BLE001 - onnx rejects this context: no body, not an error
        return None
    return body or None
