"""Mutations of ONNX models and of input sets, each drawn from a seeded generator.

A model case is a seed model (:mod:`.fuzz_seeds`) with one to three mutations applied: to its
protobuf structure (element types, dims, shape values, dangling edges, cycles, duplicate
names, missing initializers, unknown domains, future opsets, attributes, op types, external
data paths inside and outside the model's folder, subgraph bodies) and then, sometimes, to its
bytes (truncation, flipped bytes). An input case is a seed's feed with one or two mutations
(wrong dtype, rank, shape or name, NaN and Inf, non-contiguous, read-only, Fortran order,
Python lists, non-arrays, out-of-range indices, zero-size and dynamic dims), with what the
result must be: a typed error naming an input, the seed's own result, or the reference's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import numpy_helper

from .fuzz_seeds import SEEDS

__all__ = ["InputCase", "ModelCase", "input_case", "model_case", "mutate_model",
           "MODEL_MUTATIONS"]

_HUGE = [-1, -7, 0, 2**31, 2**40, 2**62, 2**63 - 1]


@dataclass
class ModelCase:
    """One fuzzed model: its bytes (or a file ``path``), the inputs to feed it, and what
    was done to it."""

    index: int
    seed: str
    mutations: list[str]
    inputs: dict[str, np.ndarray]
    data: bytes | None = None
    path: str | None = None


@dataclass
class InputCase:
    """One fuzzed input set for seed ``seed``. ``expect``: ``"input-error"`` (a typed
    InputError naming one of ``culprits``), ``"same"`` (bit-identical to the seed's own feed),
    ``"reference"`` (the reference device's results on the same values, or a typed error)."""

    index: int
    seed: str
    mutations: list[str]
    inputs: Any
    expect: str
    culprits: list[str] = field(default_factory=list)
    clean: dict[str, np.ndarray] = field(default_factory=dict)


# -- model mutations ---------------------------------------------------------------------------
def _values(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    return [*graph.input, *graph.output, *graph.value_info]


def _pick(rng: np.random.Generator, items: list[Any]) -> Any:
    return items[int(rng.integers(len(items)))] if items else None


def _elem_type(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    graph = proto.graph
    choice = rng.integers(3)
    value = int(_pick(rng, [*range(0, 26), 99, 12345]))
    if choice == 0 and graph.initializer:
        tensor = _pick(rng, list(graph.initializer))
        tensor.data_type = value
        return f"elem_type:initializer={value}"
    info = _pick(rng, _values(graph))
    info.type.tensor_type.elem_type = value
    return f"elem_type:value={value}"


def _dims(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    graph = proto.graph
    value = int(_pick(rng, _HUGE))
    if rng.integers(2) and graph.initializer:
        tensor = _pick(rng, list(graph.initializer))
        if tensor.dims:
            tensor.dims[int(rng.integers(len(tensor.dims)))] = value
        else:
            tensor.dims.append(value)
        return f"dims:initializer={value}"
    info = _pick(rng, [*graph.input, *graph.output])
    dims = info.type.tensor_type.shape.dim
    if dims:
        dim = dims[int(rng.integers(len(dims)))]
        dim.dim_value = max(value, 0) if rng.integers(2) else value
    return f"dims:port={value}"


def _shape_values(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    ints = [t for t in proto.graph.initializer if t.data_type == T.INT64]
    if not ints:
        return _dims(proto, rng, work)
    tensor = _pick(rng, ints)
    array = numpy_helper.to_array(tensor).copy()
    if array.size and rng.integers(3):
        flat = array.reshape(-1)
        flat[int(rng.integers(flat.size))] = int(_pick(rng, [*_HUGE, -(2**40), 10**6, -2,
                                                             -1, 0, 1, 2, 3, 6]))
    else:
        array = rng.integers(-3, 2**20, size=int(rng.integers(0, 5))).astype(np.int64)
    tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
    return f"shape_values:{tensor.name}"


def _dangling(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    node = _pick(rng, list(proto.graph.node))
    if not node.input:
        node.input.append("ghost")
    else:
        node.input[int(rng.integers(len(node.input)))] = "ghost"
    return f"dangling:{node.op_type}"


def _cycle(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    nodes = list(proto.graph.node)
    i = int(rng.integers(len(nodes)))
    j = int(rng.integers(i, len(nodes)))
    later = [o for o in nodes[j].output if o]
    if nodes[i].input and later:
        nodes[i].input[int(rng.integers(len(nodes[i].input)))] = _pick(rng, later)
    return f"cycle:{i}->{j}"


def _duplicate(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    graph = proto.graph
    what = int(rng.integers(4))
    if what == 0 and len(graph.node) > 1:
        a, b = rng.choice(len(graph.node), 2, replace=False)
        graph.node[int(b)].output[0] = graph.node[int(a)].output[0]
        return "duplicate:output"
    if what == 1 and graph.input:
        graph.input.append(_pick(rng, list(graph.input)))
        return "duplicate:input"
    if what == 2 and graph.initializer:
        extra = graph.initializer.add()
        extra.CopyFrom(_pick(rng, list(graph.initializer)))
        return "duplicate:initializer"
    if graph.input and graph.node:  # a node writes a graph input
        graph.node[int(rng.integers(len(graph.node)))].output[0] = graph.input[0].name
    return "duplicate:writes-input"


def _missing_initializer(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    graph = proto.graph
    if not graph.initializer:
        return _dangling(proto, rng, work)
    del graph.initializer[int(rng.integers(len(graph.initializer)))]
    return "missing_initializer"


def _unknown_domain(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    node = _pick(rng, list(proto.graph.node))
    node.domain = str(_pick(rng, ["com.example.fuzz", "ai.onnx.ml", "com.microsoft", "x"]))
    if rng.integers(2):
        proto.opset_import.append(onnx.helper.make_opsetid(node.domain, 1))
    return f"unknown_domain:{node.domain}"


def _future_opset(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    what = int(rng.integers(3))
    if what == 0:
        proto.ir_version = int(_pick(rng, [0, 99, 2**31 - 1]))
        return f"ir_version:{proto.ir_version}"
    version = int(_pick(rng, [0, 1, 5, 26, 99, 10**4, 2**62]))
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = version
    return f"opset:{version}"


def _attribute(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    nodes = [n for n in proto.graph.node if n.attribute] or list(proto.graph.node)
    node = _pick(rng, nodes)
    if not node.attribute or rng.integers(4) == 0:
        node.attribute.append(onnx.helper.make_attribute("fuzz_extra", 1))
        return f"attribute:extra:{node.op_type}"
    attr = _pick(rng, list(node.attribute))
    what = int(rng.integers(4))
    if what == 0:
        node.attribute.remove(attr)
        return f"attribute:drop:{node.op_type}.{attr.name}"
    if attr.type == onnx.AttributeProto.INT:
        attr.i = int(_pick(rng, [*_HUGE, -100, 100]))
    elif attr.type == onnx.AttributeProto.INTS:
        del attr.ints[:]
        attr.ints.extend(int(v) for v in rng.choice(_HUGE, int(rng.integers(0, 6))))
    elif attr.type == onnx.AttributeProto.FLOAT:
        attr.f = float(_pick(rng, [np.nan, np.inf, -1e30, 0.0]))
    if what == 1:
        attr.type = int(rng.integers(15))
    return f"attribute:{node.op_type}.{attr.name}"


_OPS = ["Conv", "Reshape", "Loop", "Foo", "", "Identity", "Add", "MatMul", "Gather",
        "Resize", "TopK", "If", "Scan", "Split", "ConstantOfShape", "Tile", "Einsum"]


def _op_type(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    node = _pick(rng, list(proto.graph.node))
    node.op_type = str(_pick(rng, _OPS))
    return f"op_type:{node.op_type}"


def _drop(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    graph = proto.graph
    if rng.integers(2) and len(graph.node) > 1:
        del graph.node[int(rng.integers(len(graph.node)))]
        return "drop:node"
    out = _pick(rng, list(graph.output))
    out.name = "nowhere" if rng.integers(2) else out.name + "_x"
    return "drop:output"


def _rank(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    info = _pick(rng, list(proto.graph.input))
    dims = info.type.tensor_type.shape.dim
    if dims and rng.integers(2):
        del dims[int(rng.integers(len(dims)))]
    else:
        dims.add().dim_value = int(_pick(rng, [1, 3, 2**33]))
    return f"rank:{info.name}"


def _subgraph(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    bodies = [a.g for n in proto.graph.node for a in n.attribute
              if a.type == onnx.AttributeProto.GRAPH]
    if not bodies:
        return _dangling(proto, rng, work)
    body = _pick(rng, bodies)
    holder = onnx.ModelProto()
    holder.graph.CopyFrom(body)
    inner = _pick(rng, [_dangling, _elem_type, _op_type, _cycle, _duplicate])
    kind = inner(holder, rng, work)
    body.CopyFrom(holder.graph)
    return f"subgraph:{kind}"


# Locations an external initializer is given, and the files set up for them.
_LOCATIONS = ["data.bin", "../outside.bin", "/etc/passwd", "sub/../../outside.bin",
              "link.bin", "missing.bin", "", "sub/../data.bin", "data.bin?offset", "data.bin?len"]


def _external(proto: onnx.ModelProto, rng: np.random.Generator, work: str) -> str:
    graph = proto.graph
    if not graph.initializer:
        return _dangling(proto, rng, work)
    tensor = _pick(rng, list(graph.initializer))
    raw = numpy_helper.to_array(tensor).tobytes()
    folder = os.path.join(work, "model")
    os.makedirs(os.path.join(folder, "sub"), exist_ok=True)
    with open(os.path.join(folder, "data.bin"), "wb") as f:
        f.write(raw)
    with open(os.path.join(work, "outside.bin"), "wb") as f:
        f.write(raw)
    link = os.path.join(folder, "link.bin")
    if not os.path.lexists(link):
        os.symlink(os.path.join(work, "outside.bin"), link)
    location = str(_pick(rng, _LOCATIONS))
    entries = {"location": location.split("?")[0]}
    if location.endswith("?offset"):
        entries["offset"] = str(len(raw) + 16)
    elif location.endswith("?len"):
        entries["length"] = str(len(raw) + 1 + int(rng.integers(2**20)))
    tensor.ClearField("raw_data")
    for name in ("float_data", "int64_data", "int32_data", "double_data"):
        tensor.ClearField(name)
    tensor.data_location = T.EXTERNAL
    del tensor.external_data[:]
    for key, value in entries.items():
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return f"external:{location}"


MODEL_MUTATIONS: dict[str, Callable[[onnx.ModelProto, np.random.Generator, str], str]] = {
    "elem_type": _elem_type, "dims": _dims, "shape_values": _shape_values,
    "dangling": _dangling, "cycle": _cycle, "duplicate": _duplicate,
    "missing_initializer": _missing_initializer, "unknown_domain": _unknown_domain,
    "future_opset": _future_opset, "attribute": _attribute, "op_type": _op_type,
    "drop": _drop, "rank": _rank, "subgraph": _subgraph, "external": _external,
}


def model_case(index: int, root: int, work: str) -> ModelCase:
    """Fuzzed model ``index`` of run ``root``; files it needs are written under ``work``."""
    rng = np.random.default_rng([root, index])
    name = str(_pick(rng, sorted(SEEDS)))
    kinds = [str(_pick(rng, sorted(MODEL_MUTATIONS)))
             for _ in range(int(_pick(rng, [1, 1, 1, 2, 2, 3])))]
    return mutate_model(index, name, kinds, rng, work)


def mutate_model(index: int, name: str, kinds: list[str], rng: np.random.Generator,
                 work: str, byte_kind: int | None = None) -> ModelCase:
    """Seed ``name`` with mutations ``kinds`` (keys of :data:`MODEL_MUTATIONS`) applied in
    order, then ``byte_kind`` 0 (truncate) or 1 (flip bytes), drawn from ``rng`` if None."""
    proto, inputs = SEEDS[name]()
    done = []
    for kind in kinds:
        try:
            done.append(MODEL_MUTATIONS[kind](proto, rng, work))
        except Exception as exc:  # noqa: BLE001 - an earlier mutation made this one moot
            done.append(f"skipped:{kind}:{type(exc).__name__}")
    external = any(k.startswith("external:") for k in done)
    data = proto.SerializeToString()
    if byte_kind is None:
        byte_kind = int(rng.integers(10))
    if byte_kind == 0 and data:  # truncated
        cut = int(rng.integers(len(data)))
        data = data[:cut]
        done.append(f"truncate:{cut}")
    elif byte_kind == 1 and data:  # flipped bytes
        buf = bytearray(data)
        for _ in range(int(rng.integers(1, 9))):
            buf[int(rng.integers(len(buf)))] ^= int(rng.integers(1, 256))
        data = bytes(buf)
        done.append("flip")
    case = ModelCase(index, name, done, inputs)
    if external or rng.integers(8) == 0:  # through a file: external data needs its folder
        folder = os.path.join(work, "model")
        os.makedirs(folder, exist_ok=True)
        case.path = os.path.join(folder, "model.onnx")
        with open(case.path, "wb") as f:
            f.write(data)
    else:
        case.data = data
    return case


# -- input mutations ---------------------------------------------------------------------------
_DTYPES = [np.float64, np.float16, np.int32, np.int64, np.uint8, np.bool_, np.complex64,
           np.float32, np.int8]


def _mutate_inputs(feed: dict[str, Any], name: str, rng: np.random.Generator,
                   static: dict[str, tuple[Any, ...]]) -> tuple[str, str]:
    """Change ``feed[name]`` in place; returns (kind, expect)."""
    x = feed[name]
    kind = int(rng.integers(15))
    if kind == 0:
        dtype = np.dtype(_pick(rng, [d for d in _DTYPES if np.dtype(d) != x.dtype]))
        feed[name] = x.astype(dtype)
        return f"dtype:{dtype.name}", "input-error"
    if kind == 1:
        if x.ndim == 0 or rng.integers(2):
            feed[name] = x[None]
        else:
            feed[name] = x[0]
        return "rank", "input-error"
    if kind == 2:
        dims = static[name]
        fixed = [k for k, d in enumerate(dims) if isinstance(d, int)]
        free = [k for k, d in enumerate(dims) if not isinstance(d, int)]
        if free and rng.integers(2):  # a dynamic dim: a valid new size (0 included)
            axis = _pick(rng, free)
            shape = list(x.shape)
            shape[axis] = int(_pick(rng, [0, 1, 5, 17]))
            feed[name] = _resized(x, shape, rng)
            return "shape:dynamic", "reference"
        if fixed:
            shape = list(x.shape)
            axis = _pick(rng, fixed)
            shape[axis] = shape[axis] + int(_pick(rng, [1, 2, 7])) if rng.integers(2) else 0
            feed[name] = _resized(x, shape, rng)
            return "shape:static", "input-error"
        return _mutate_inputs(feed, name, rng, static)
    if kind == 3:
        feed[name + "_typo"] = feed.pop(name)
        return "name:typo", "input-error"
    if kind == 4:
        del feed[name]
        return "name:missing", "input-error"
    if kind == 5:
        feed["extra"] = x
        return "name:extra", "input-error"
    if kind == 6 and x.dtype.kind == "f" and x.size:
        y = x.copy()
        flat = y.reshape(-1)
        for _ in range(int(rng.integers(1, max(2, flat.size)))):
            flat[int(rng.integers(flat.size))] = _pick(rng, [np.nan, np.inf, -np.inf])
        feed[name] = y
        return "nan_inf", "reference"
    if kind == 7:
        big = np.repeat(np.expand_dims(x, -1), 3, axis=-1)
        feed[name] = big[..., 1] if x.ndim else x  # same values, a strided view
        return "non_contiguous", "same"
    if kind == 8:
        y = x.copy()
        y.setflags(write=False)
        feed[name] = y
        return "read_only", "same"
    if kind == 9:
        feed[name] = np.asfortranarray(x) if x.ndim else x  # (it makes 0-d arrays 1-d)
        return "fortran", "same"
    if kind == 10:
        feed[name] = x.tolist()
        return "python_list", "same"
    if kind == 11:
        feed[name] = _pick(rng, [None, "text", {"a": 1}, object(), [[1, 2], [3]], b"\x00\x01"])
        return "not_an_array", "input-error"
    if kind == 12 and x.dtype.kind in "iu":
        y = x.copy()
        flat = y.reshape(-1) if y.ndim else y.reshape(1)
        if flat.size:
            info = np.iinfo(y.dtype)
            value = int(_pick(rng, [-(2**40), 2**40, -1, 10**9, 2**62]))
            flat[int(rng.integers(flat.size))] = min(max(value, info.min), info.max)
        feed[name] = y
        return "int_values", "reference"
    if kind == 13:
        y = np.broadcast_to(x, x.shape)  # a read-only view with the right shape
        feed[name] = y
        return "broadcast_view", "same"
    if kind == 14 and x.ndim:
        feed[name] = x[::-1][::-1]  # a negative-stride view of the same values
        return "reversed_view", "same"
    y = x.copy()
    feed[name] = y
    return "copy", "same"


def _resized(x: np.ndarray, shape: list[int], rng: np.random.Generator) -> np.ndarray:
    if x.dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if x.dtype.kind in "iu":
        return rng.integers(0, 3, shape).astype(x.dtype)
    return rng.standard_normal(shape).astype(x.dtype)


def input_case(index: int, root: int,
               static: Callable[[str], dict[str, tuple[Any, ...]]]) -> InputCase:
    """Fuzzed input set ``index`` of run ``root``; ``static(seed)`` gives each input's
    declared shape (ints for static dims)."""
    rng = np.random.default_rng([root, index, 7])
    name = str(_pick(rng, sorted(SEEDS)))
    _, clean = SEEDS[name]()
    feed: dict[str, Any] = dict(clean)
    shapes = static(name)
    kinds, expects, culprits = [], [], []
    bad: set[str] = set()
    for _ in range(int(rng.integers(1, 3))):
        present = [k for k in feed if k in clean and isinstance(feed[k], np.ndarray)]
        if not present:
            break
        present = [k for k in present if k not in bad]  # a bad input stays as bad
        if not present:
            break
        target = str(_pick(rng, present))
        kind, expect = _mutate_inputs(feed, target, rng, shapes)
        kinds.append(f"{target}:{kind}")
        if expect == "input-error":
            bad.add(target)
        expects.append(expect)
        culprits.append("extra" if kind == "name:extra" else
                        target + "_typo" if kind == "name:typo" else target)
    errors = [c for c, e in zip(culprits, expects, strict=True) if e == "input-error"]
    if errors:
        expect = "input-error"
    elif "reference" in expects:
        expect = "reference"
    else:
        expect = "same"
    inputs: Any = feed
    if rng.integers(6) == 0 and expect != "input-error":  # positional, in model order
        inputs = [feed[k] for k in clean]
    return InputCase(index, name, kinds, inputs, expect, errors, clean)
