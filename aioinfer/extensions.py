"""Custom operations: the :class:`Op` base and the loading of extensions.

An operation in a custom domain is a subclass of :class:`Op` (OpenVINO's ``ov::op::Op`` of
``template_extension/identity.hpp``, and ``openvino.Op`` in Python)::

    class Swish(aioinfer.Op):
        domain = "com.example"
        since_version = 1

        def infer_shape(self, inputs, *, beta=1.0):
            return [inputs[0]]                       # same element type and shape as x

        def evaluate(self, x, *, beta=1.0):
            return x / (1.0 + np.exp(-beta * x))

    core.add_extension(Swish)                        # or [Swish, ...], "pkg.mod:Swish", ...

``evaluate`` takes the node's input arrays positionally (``None`` for an absent optional
input) and its attributes as keywords (decoded: ints, floats, str, lists, arrays), and returns
one array or a tuple with one per output. ``infer_shape`` gets one :class:`TensorType` per
input and returns one per output (or ``None``: unknown); the Core writes those types into the
model's ``value_info``, so a model with custom nodes can be cut into sub-models (HETERO) and
its downstream values shape-inferred. ``function()`` may give a decomposition into standard
ONNX nodes (an ``onnx.FunctionProto`` in the op's domain): a device that cannot run
``evaluate`` then runs that function instead.

Extensions are scoped to the :class:`~aioinfer.Core` that added them: the Core installs them
into its own plugin instances (NUMPY's per-instance kernel registry, TEMPLATE's custom
operations), so two Cores in one process do not see each other's ops. An exception raised by
``evaluate`` reaches the caller as :class:`~aioinfer.errors.InferenceError` naming the node
and the op.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .errors import ExtensionError, InvalidModelError
from .graph.value_types import ValueTypes
from .model import Dim, Model, dtype_of

__all__ = ["Op", "TensorType", "ExtensionSet", "load_extension", "node_attributes",
           "annotate_types", "with_functions", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "aioinfer.extensions"
"""Entry-point group of third-party extensions: ``core.add_extension("name")`` loads one."""

OpKey = tuple[str, str]


@dataclass(frozen=True)
class TensorType:
    """The static type of a tensor value: element type and shape (``None``: unknown rank; a
    dimension is an int, a symbolic name, or ``None`` for unknown)."""

    element_type: np.dtype | None
    shape: tuple[Dim, ...] | None

    @classmethod
    def of(cls, value: Any) -> TensorType:
        """A TensorType from a TensorType, a ``(dtype, shape)`` pair or an array."""
        if isinstance(value, TensorType):
            return value
        if isinstance(value, np.ndarray):
            return cls(value.dtype, value.shape)
        dtype, shape = value
        return cls(None if dtype is None else np.dtype(dtype),
                   None if shape is None else tuple(shape))


class Op:
    """Base of a custom operation (see the module docstring).

    Class attributes: ``domain`` (required, not the default ONNX domain), ``op_type`` (the
    class name unless set), ``since_version`` (the first opset version of ``domain`` it
    implements), ``foldable`` (whether ``evaluate`` may run at compile time on constant
    inputs). Instances are made by the devices (no arguments) and shared by nodes and
    requests, so ``evaluate`` must not keep per-call state: several streams call it at once.
    """

    domain: ClassVar[str] = ""
    op_type: ClassVar[str] = ""
    since_version: ClassVar[int] = 1
    foldable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("op_type"):
            cls.op_type = cls.__name__

    def infer_shape(self, inputs: Sequence[TensorType], **attributes: Any
                    ) -> Sequence[TensorType | tuple[Any, Any] | None] | None:
        """The type of each output from the input types and the attributes (default:
        unknown, so the outputs stay untyped)."""
        return None

    def evaluate(self, *inputs: Any, **attributes: Any) -> Any:
        """Compute the outputs from the input arrays (one array, or a tuple of them)."""
        raise NotImplementedError(f"{self.qualified_name()}: evaluate is not implemented")

    @classmethod
    def function(cls) -> onnx.FunctionProto | None:
        """A decomposition into standard ONNX nodes, as a function named ``op_type`` in
        ``domain`` (default: none; only devices that run ``evaluate`` can run the op)."""
        return None

    @classmethod
    def qualified_name(cls) -> str:
        return f"{cls.domain}::{cls.op_type}"

    @classmethod
    def key(cls) -> OpKey:
        return cls.domain, cls.op_type


def check_op(cls: Any) -> type[Op]:
    """``cls`` if it is a usable :class:`Op` subclass, else :class:`ExtensionError`."""
    if not (isinstance(cls, type) and issubclass(cls, Op)):
        raise ExtensionError(f"an extension must be an aioinfer.Op subclass, got {cls!r}",
                             extension=repr(cls))
    if cls.domain in ("", "ai.onnx"):
        raise ExtensionError(
            f"{cls.__name__}: an Op needs its own domain (class attribute 'domain'), not the "
            "default ONNX domain", extension=cls.__name__)
    if cls.evaluate is Op.evaluate:
        raise ExtensionError(f"{cls.qualified_name()}: evaluate is not implemented",
                             extension=cls.qualified_name())
    return cls


# -- loading -----------------------------------------------------------------------------------
def load_extension(extension: Any) -> list[type[Op]]:
    """The Op classes an extension names: an Op subclass, an iterable of them, an import
    path ``"package.module:attr"`` (an Op, or a list of them), an entry point, or the name of
    an entry point in the ``aioinfer.extensions`` group."""
    if isinstance(extension, str):
        return load_extension(_resolve(extension))
    if hasattr(extension, "load") and hasattr(extension, "group"):  # an EntryPoint
        try:
            loaded = extension.load()
        except Exception as exc:
            raise ExtensionError(f"extension entry point {extension.name!r} failed to load: "
                                 f"{exc}", extension=extension.name) from exc
        return load_extension(loaded)
    if isinstance(extension, type):
        return [check_op(extension)]
    if isinstance(extension, Iterable):
        return [op for item in extension for op in load_extension(item)]
    raise ExtensionError(f"cannot load an extension from {type(extension).__name__} "
                         f"{extension!r}: expected an Op subclass, a list of them, "
                         "'module:attr' or an entry point name", extension=repr(extension))


def _resolve(path: str) -> Any:
    module, sep, attr = path.partition(":")
    if not sep:
        found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        if path not in found:
            raise ExtensionError(
                f"extension {path!r}: not 'module:attr' and no entry point of that name in "
                f"group {ENTRY_POINT_GROUP!r} (found: {sorted(found) or 'none'})",
                extension=path)
        return found[path]
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ExtensionError(f"extension {path!r} failed to import: {exc}",
                             extension=path) from exc
    return obj


# -- attributes --------------------------------------------------------------------------------
def node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (str, int, float, lists, NumPy arrays)."""
    out: dict[str, Any] = {}
    for attr in node.attribute:
        kind = attr.type
        if kind in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
            raise InvalidModelError(f"node {node.name!r} ({node.domain}::{node.op_type}): "
                                    f"graph attribute {attr.name!r} is not supported by Op")
        if kind == onnx.AttributeProto.TENSOR:
            out[attr.name] = numpy_helper.to_array(attr.t)
        elif kind == onnx.AttributeProto.TENSORS:
            out[attr.name] = [numpy_helper.to_array(t) for t in attr.tensors]
        elif kind == onnx.AttributeProto.STRING:
            out[attr.name] = attr.s.decode("utf-8")
        elif kind == onnx.AttributeProto.STRINGS:
            out[attr.name] = [s.decode("utf-8") for s in attr.strings]
        elif kind in (onnx.AttributeProto.INTS, onnx.AttributeProto.FLOATS):
            out[attr.name] = list(helper.get_attribute_value(attr))
        else:
            out[attr.name] = helper.get_attribute_value(attr)
    return out


class EvaluateError(RuntimeError):
    """``Op.evaluate`` raised: the message names the op, the cause is the original error (the
    device wraps it in :class:`~aioinfer.errors.InferenceError` naming the node)."""


def call_evaluate(op: Op, inputs: Sequence[Any], attributes: Mapping[str, Any],
                  n_outputs: int) -> tuple[Any, ...]:
    """Run ``op.evaluate`` and return its ``n_outputs`` results as a tuple."""
    try:
        result = op.evaluate(*inputs, **attributes)
    except Exception as exc:
        raise EvaluateError(f"{op.qualified_name()}.evaluate raised {type(exc).__name__}: "
                            f"{exc}") from exc
    return outputs_of(op, result, n_outputs)


def outputs_of(op: Op, result: Any, n_outputs: int) -> tuple[Any, ...]:
    """``evaluate``'s result as a tuple of ``n_outputs`` arrays (a typed error otherwise)."""
    if isinstance(result, tuple) or (isinstance(result, list) and n_outputs != 1):
        values = tuple(result)
    else:
        values = (result,)
    if len(values) != n_outputs:
        raise ExtensionError(f"{op.qualified_name()}.evaluate returned {len(values)} values, "
                             f"the node has {n_outputs} outputs", extension=op.qualified_name())
    return tuple(np.asarray(v) if isinstance(v, (np.generic, int, float, bool)) else v
                 for v in values)


# -- types and decompositions ------------------------------------------------------------------
def used_ops(model: Model, ops: Mapping[OpKey, type[Op]]) -> dict[OpKey, type[Op]]:
    """The extension ops that top-level nodes of ``model`` use."""
    if not ops:
        return {}
    used: dict[OpKey, type[Op]] = {}
    for node in model.proto.graph.node:
        cls = ops.get((node.domain, node.op_type))
        if cls is not None:
            used[cls.key()] = cls
    return used


def annotate_types(model: Model, ops: Mapping[OpKey, type[Op]]) -> Model:
    """``model``, or a copy of it whose ``value_info`` types the outputs of its custom nodes
    (from each op's ``infer_shape``, fed by ONNX shape inference of the rest of the graph,
    repeated until nothing new is learnt). Outputs already typed are kept."""
    nodes = [n for n in model.proto.graph.node if (n.domain, n.op_type) in ops]
    graph = model.proto.graph
    typed = {i.name for i in (*graph.value_info, *graph.output) if i.type.WhichOneof("value")}
    if all(o in typed for n in nodes for o in n.output if o):
        return model
    model = model.clone()
    pending = list(nodes)
    while pending:
        types = ValueTypes(model.proto.graph, model.opsets, model.proto.functions)
        ready = [n for n in pending if all(not i or types.type_of(i) is not None
                                           for i in n.input)]
        last_round = not ready
        for node in ready or pending:  # no progress: type the rest from what is known
            _type_outputs(model, node, ops[(node.domain, node.op_type)], types, typed)
        pending = [] if last_round else [n for n in pending if n not in ready]
    return model


def _type_outputs(model: Model, node: onnx.NodeProto, cls: type[Op], types: ValueTypes,
                  typed: set[str]) -> None:
    inputs = [_tensor_type(types.type_of(i)) if i else TensorType(None, None)
              for i in node.input]
    try:
        result = cls().infer_shape(inputs, **node_attributes(node))
    except Exception as exc:
        raise InvalidModelError(f"node {node.name!r} ({cls.qualified_name()}): infer_shape "
                                f"failed: {type(exc).__name__}: {exc}") from exc
    if result is None:
        return
    result = list(result)
    if len(result) != len(node.output):
        raise InvalidModelError(f"node {node.name!r} ({cls.qualified_name()}): infer_shape "
                                f"gave {len(result)} types, the node has {len(node.output)} "
                                "outputs")
    for name, kind in zip(node.output, result, strict=True):
        if not name or name in typed or kind is None:
            continue
        tensor = TensorType.of(kind)
        if tensor.element_type is None:
            continue
        elem = helper.np_dtype_to_tensor_dtype(tensor.element_type)
        model.proto.graph.value_info.append(helper.make_tensor_value_info(
            name, elem, None if tensor.shape is None else list(tensor.shape)))
        typed.add(name)


def _tensor_type(kind: onnx.TypeProto | None) -> TensorType:
    if kind is None or kind.WhichOneof("value") != "tensor_type":
        return TensorType(None, None)
    tensor = kind.tensor_type
    shape: tuple[Dim, ...] | None = None
    if tensor.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                      for d in tensor.shape.dim)
    return TensorType(dtype_of(tensor.elem_type), shape)


def with_functions(model: Model, ops: Mapping[OpKey, type[Op]]) -> Model:
    """``model``, or a copy with the decompositions (``Op.function()``) of the custom ops it
    uses added as local functions, for a device that does not run ``evaluate``."""
    have = {(f.domain, f.name) for f in model.proto.functions}
    extra = []
    for key, cls in used_ops(model, ops).items():
        if key in have:
            continue
        function = cls.function()
        if function is not None:
            if (function.domain, function.name) != key:
                raise ExtensionError(f"{cls.qualified_name()}.function() names "
                                     f"{function.domain}::{function.name}",
                                     extension=cls.qualified_name())
            extra.append(function)
    if not extra:
        return model
    model = model.clone()
    model.proto.functions.extend(extra)
    return model


class ExtensionSet:
    """The custom operations one :class:`~aioinfer.Core` has added, and how they reach its
    plugins and models."""

    def __init__(self) -> None:
        self._ops: dict[OpKey, type[Op]] = {}
        self._lock = threading.Lock()

    @property
    def ops(self) -> dict[OpKey, type[Op]]:
        return dict(self._ops)

    def add(self, extension: Any) -> list[type[Op]]:
        """Load ``extension`` (see :func:`load_extension`) and keep its ops."""
        ops = load_extension(extension)
        with self._lock:
            for cls in ops:
                self._ops[cls.key()] = cls
        return ops

    def install(self, plugin: Any, ops: Iterable[type[Op]] | None = None) -> None:
        """Give ``plugin`` these ops (default: all of them) if it runs custom operations."""
        chosen = list(self._ops.values() if ops is None else ops)
        if chosen and getattr(plugin, "runs_operations", False):
            plugin.add_operations(chosen)

    def prepare(self, model: Model, plugin: Any = None) -> Model:
        """``model`` as ``plugin`` should get it: the custom nodes' outputs typed and, for a
        plugin that does not run custom operations, their decompositions added."""
        used = used_ops(model, self._ops)
        if not used:
            return model
        model = annotate_types(model, used)
        if plugin is not None and not getattr(plugin, "runs_operations", False):
            model = with_functions(model, used)
        return model
