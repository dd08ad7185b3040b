"""NUMPY's ``export_model`` / ``import_model``: a compiled plan stored as data, never as code.

The blob holds the plan as compiled (after NUMPY's graph passes and constant folding, before
the compiled tier), so an import skips reading, checking and optimising the graph: it only
binds the kernels again and gives the plan its compiled-tier variants, as a compile does. The
results are bit-identical to the model it was exported from (same kernels, attributes,
constants, memory layouts)::

    MAGIC (16 bytes) | manifest length (uint32 LE) | manifest (JSON)
    | padding to 64 | ONNX bytes | padding to 64 | array data (each array 64-aligned)

The manifest (JSON) holds the CRC-32 of the whole blob (taken with that field blank, checked
on import: a truncated or corrupt blob is refused, never run), the config, where the ONNX
bytes and the array data lie, one entry per array (dtype, shape, strides, where its bytes are)
and the plan as tagged JSON values. The ONNX bytes are the model's interface (inputs, outputs,
opsets, metadata; no nodes, no weights) or, for a model with dynamic input shapes, the whole
model (a new set of shapes is compiled from it). Kernels are named only by their
registration (domain, op type, opset version), as an ONNX node names them, and looked up in
the importing plugin's registry: nothing in a blob is executed or unpickled, and a value of
any other kind is refused on export (``NotSupportedError``) and on import
(``InvalidModelError``).
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import json
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import onnx

from ...errors import InvalidModelError, NotSupportedError
from ...graph.ir import model_interface
from ...graph.specialize import has_dynamic_inputs, with_input_shapes
from ...model import Model, Port, load_model
from .compiler import compile_graph
from .kernels import jit
from .plan import Plan, ShapeSpecializedPlan, Step
from .registry import KernelRegistry, supported_ops

MAGIC = b"AIOINFER-NUMPY01"
FORMAT = 1
_LENGTH = struct.Struct("<I")
_ALIGN = 64
_CLASSES: dict[str, type] = {"Plan": Plan, "Step": Step, "Port": Port}
_ARRAY_KINDS = frozenset("biufcSUmM")
_BLANK = b'"crc32": "--------"'


class Snapshot:
    """A plan's steps and those of its subgraph plans, as compiled (before the compiled tier
    rewrites them in place): what :func:`export_model` stores."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.steps: dict[int, tuple[Plan, list[Step]]] = {}
        self._take(plan)

    def _take(self, plan: Plan) -> None:
        self.steps[id(plan)] = (plan, list(plan.steps))
        for step in plan.steps:
            for sub in _plans_in(step.fn):
                self._take(sub)

    def steps_of(self, plan: Plan) -> list[Step]:
        held = self.steps.get(id(plan))
        return list(held[1]) if held is not None and held[0] is plan else list(plan.steps)


def _plans_in(value: Any) -> Iterator[Plan]:
    if isinstance(value, Plan):
        yield value
    elif isinstance(value, functools.partial):
        for v in (*value.args, *value.keywords.values()):
            yield from _plans_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _plans_in(v)


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


# -- export --------------------------------------------------------------------------------------
def export_model(compiled: Any) -> bytes:
    """The blob of a :class:`~.plugin.NumpyCompiledModel` (see the module docstring)."""
    snapshot: Snapshot | None = getattr(compiled, "exportable", None)
    if snapshot is None:
        raise NotSupportedError(f"{compiled.device}: export_model: this compiled model keeps "
                                "no exportable plan", device=compiled.device)
    model: Model = compiled.model
    dynamic = has_dynamic_inputs(model.proto.graph)
    onnx_bytes = (model.proto if dynamic else model_interface(model.proto)).SerializeToString()
    writer = _Writer(compiled.plugin.kernels, snapshot, compiled.device)
    plan = writer.value(snapshot.plan)
    supported = compiled.properties.supported()
    config = {k: v for k, v in compiled.properties.as_dict().items() if supported[k] == "RW"}
    manifest: dict[str, Any] = {"format": FORMAT, "device": compiled.device, "dynamic": dynamic,
                                "config": _json_config(config), "crc32": "--------",
                                "plan": plan, "arrays": []}
    spans: list[bytes] = []
    data_size = 0
    for array in writer.arrays:
        entry, raw = _array_entry(array, data_size)
        manifest["arrays"].append(entry)
        spans.append(raw)
        data_size = _aligned(data_size + len(raw))
    # Offsets depend on the manifest's length, which holds them: fix them to a wide width.
    manifest["model"] = [0, len(onnx_bytes)]
    manifest["data"] = [0, data_size]
    probe = json.dumps(manifest).encode()
    head = _aligned(len(MAGIC) + _LENGTH.size + len(probe) + 64)
    manifest["model"][0] = head
    manifest["data"][0] = _aligned(head + len(onnx_bytes))
    text = json.dumps(manifest).encode()
    text += b" " * (head - len(MAGIC) - _LENGTH.size - len(text))
    out = bytearray(manifest["data"][0] + data_size)
    out[:len(MAGIC)] = MAGIC
    _LENGTH.pack_into(out, len(MAGIC), len(text))
    out[len(MAGIC) + _LENGTH.size:head] = text
    out[head:head + len(onnx_bytes)] = onnx_bytes
    base = manifest["data"][0]
    for entry, raw in zip(manifest["arrays"], spans, strict=True):
        out[base + entry["at"]:base + entry["at"] + len(raw)] = raw
    # the checksum of the whole blob, taken with its own field in the manifest still blank
    crc = f"{zlib.crc32(memoryview(out)) & 0xFFFFFFFF:08x}"
    text = text.replace(_BLANK, f'"crc32": "{crc}"'.encode(), 1)
    out[len(MAGIC) + _LENGTH.size:head] = text
    return bytes(out)


def _json_config(config: Mapping[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, (bool, int, float, str)) or value is None:
            plain[str(key)] = getattr(value, "value", value)  # enums by their value
    return plain


def _array_entry(array: np.ndarray, at: int) -> tuple[dict[str, Any], bytes]:
    """The manifest entry of ``array`` and the bytes its strides span (layout kept as is)."""
    dtype = _dtype_name(array.dtype)
    if array.size == 0:
        return {"dtype": dtype, "shape": list(array.shape), "strides": None, "at": at,
                "span": 0, "start": 0}, b""
    low = sum(s * (n - 1) for s, n in zip(array.strides, array.shape, strict=True) if s < 0)
    high = sum(s * (n - 1) for s, n in zip(array.strides, array.shape, strict=True) if s > 0)
    span = high - low + array.itemsize
    raw = ctypes.string_at(array.ctypes.data + low, span)
    return {"dtype": dtype, "shape": list(array.shape), "strides": list(array.strides),
            "at": at, "span": span, "start": -low}, raw


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.kind in _ARRAY_KINDS and dtype.fields is None and dtype.subdtype is None:
        try:
            if np.dtype(dtype.str) == dtype:
                return dtype.str
        except TypeError:  # ml_dtypes' float8 types say '<f1'
            pass
    found = _ml_dtype(dtype.name)
    if found is not None and found == dtype:  # (a dtype compares equal to None: float64)
        return f"ml:{dtype.name}"
    raise NotSupportedError(f"NUMPY: export_model: arrays of {dtype} cannot be stored")


def _ml_dtype(name: str) -> np.dtype | None:
    """One of ml_dtypes' types (bfloat16, float8_*, int4, ...) by name; None otherwise."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    kind = getattr(ml_dtypes, name, None) if name.isidentifier() else None
    if isinstance(kind, type) and issubclass(kind, np.generic) and (
            kind.__module__.split(".")[0] == "ml_dtypes"):
        return np.dtype(kind)
    return None


class _Writer:
    """Plan values to tagged JSON; arrays go to :attr:`arrays` (each object once)."""

    def __init__(self, registry: KernelRegistry, snapshot: Snapshot, device: str) -> None:
        self.snapshot = snapshot
        self.device = device
        self.arrays: list[np.ndarray] = []
        self._array_index: dict[int, int] = {}
        self._kernels = _kernel_names(registry)
        self._node = "?"

    def refuse(self, what: str) -> NotSupportedError:
        return NotSupportedError(f"{self.device}: export_model: node {self._node!r} binds "
                                 f"{what}, which a NUMPY blob cannot store", device=self.device)

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, (bool, str)) or type(v) in (int, float):
            return v
        if isinstance(v, np.ndarray):
            return self._array(v)
        if isinstance(v, np.generic):
            if v.dtype.kind not in _ARRAY_KINDS and _ml_dtype(v.dtype.name) is None:
                raise self.refuse(f"a {type(v).__name__} scalar")
            return {"$": "scalar", "a": self._array(np.asarray(v))}
        if isinstance(v, np.dtype):  # a dtype as a value (Cast's target): strings allowed
            return {"$": "dtype", "v": "object" if v.kind == "O" else _dtype_name(v)}
        if isinstance(v, type) and issubclass(v, np.generic):
            return {"$": "type", "v": "object" if v is np.object_ else _dtype_name(np.dtype(v))}
        if isinstance(v, (list, tuple)):
            return {"$": type(v).__name__, "v": [self.value(x) for x in v]}
        if isinstance(v, dict):
            return {"$": "dict", "k": [self.value(k) for k in v], "v": [self.value(x)
                                                                     for x in v.values()]}
        if isinstance(v, bytes):
            return {"$": "bytes", "v": v.hex()}
        if isinstance(v, Plan):
            return self._dataclass(v, steps=self.snapshot.steps_of(v))
        if isinstance(v, Step):
            self._node = v.node
            return self._dataclass(v)
        if isinstance(v, Port):
            return self._dataclass(v)
        if isinstance(v, functools.partial):
            return {"$": "partial", "fn": self.value(v.func), "a": self.value(list(v.args)),
                    "k": {str(k): self.value(x) for k, x in v.keywords.items()}}
        if callable(v):
            return self._function(v)
        raise self.refuse(f"a {type(v).__name__}")

    def _dataclass(self, v: Any, **override: Any) -> dict[str, Any]:
        fields = {f.name: self.value(override.get(f.name, getattr(v, f.name)))
                  for f in dataclasses.fields(v)}
        return {"$": type(v).__name__, "f": fields}

    def _array(self, array: np.ndarray) -> dict[str, Any]:
        if array.dtype == object:
            items = array.ravel().tolist()
            if not all(isinstance(x, (str, bytes)) for x in items):
                raise self.refuse("an object array holding values other than strings")
            return {"$": "strings", "shape": list(array.shape), "v": [self.value(x)
                                                                        for x in items]}
        index = self._array_index.get(id(array))
        if index is None:
            _dtype_name(array.dtype)  # refuse what cannot be stored now, naming the node
            index = self._array_index[id(array)] = len(self.arrays)
            self.arrays.append(array)
        return {"$": "array", "i": index}

    def _function(self, fn: Callable[..., Any]) -> dict[str, Any]:
        key = self._kernels.get(id(fn))
        if key is None:  # only what a model can name: a registered kernel
            raise self.refuse(f"function {getattr(fn, '__module__', '')}."
                              f"{getattr(fn, '__qualname__', repr(fn))}, not a registered "
                              "kernel")
        return {"$": "kernel", "domain": key[0], "op": key[1], "since": key[2]}


def _kernel_names(registry: KernelRegistry) -> dict[int, tuple[str, str, int]]:
    """id(kernel function) -> (domain, op type, since) of every kernel ``registry`` has."""
    names: dict[int, tuple[str, str, int]] = {}
    ops = {**supported_ops(), **registry.overlay()}
    for (domain, op), versions in ops.items():
        for since in versions:
            spec = registry.lookup(op, since, domain)
            if spec is not None and spec.since == since:
                names.setdefault(id(spec.fn), (domain, op, since))
    return names


# -- import --------------------------------------------------------------------------------------
def import_model(plugin: Any, blob: Any, config: Mapping[str, Any]) -> Any:
    """A :class:`~.plugin.NumpyCompiledModel` from :func:`export_model`'s blob; ``config``
    overrides the config stored in it. Raises ``InvalidModelError`` naming what is wrong."""
    from ...properties import PropertySet
    from .plugin import NumpyCompiledModel, _function_kw, _specs

    device = plugin.name
    view = memoryview(blob).cast("B")
    manifest = _manifest(view, device)
    try:
        model_at, model_size = (int(x) for x in manifest["model"])
        data_at, data_size = (int(x) for x in manifest["data"])
        dynamic = bool(manifest["dynamic"])
        stored = manifest["config"]
        if not isinstance(stored, dict):
            raise ValueError("config is not an object")
        if not (0 <= model_at <= model_at + model_size <= len(view)
                and 0 <= data_at and data_at + data_size == len(view)):
            raise ValueError(f"sections past the end of the blob ({len(view)} bytes)")
        _check(view, manifest)
        model = _read_model(bytes(view[model_at:model_at + model_size]), dynamic)
        arrays = _arrays(manifest["arrays"], view[data_at:], data_at)
        generic = _Reader(plugin.kernels, arrays).value(manifest["plan"])
        if not isinstance(generic, Plan):
            raise ValueError("the plan is not a Plan")
    except InvalidModelError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise InvalidModelError(f"{device}: import_model: corrupt blob: {exc}") from exc
    props = PropertySet(_specs(device), device, **plugin._settable())
    props.set({**stored, **config})
    tier = props.get(jit.PROPERTY)
    snapshot = Snapshot(generic)
    specialised: Plan = jit.specialise(generic, tier)
    plan: Plan | ShapeSpecializedPlan = specialised
    if dynamic:  # as NumpyPlugin.compile_model: each new set of shapes compiles from the graph
        graph, kw = model.proto.graph, _function_kw(model)
        kw["registry"] = plugin.kernels
        names = generic.input_names

        def compile_for(shapes: tuple[tuple[int, ...], ...]) -> Plan:
            static = with_input_shapes(graph, dict(zip(names, shapes, strict=True)))
            return jit.specialise(compile_graph(static, model.opsets, device=device, **kw),
                                  tier)

        plan = ShapeSpecializedPlan(specialised, compile_for)
    compiled = NumpyCompiledModel(plugin, model, props, plan)
    compiled.exportable = snapshot
    return compiled


def _manifest(view: memoryview, device: str) -> dict[str, Any]:
    head = len(MAGIC) + _LENGTH.size
    if len(view) < head or bytes(view[:len(MAGIC)]) != MAGIC:
        raise InvalidModelError(f"{device}: import_model: not a NUMPY export (expected a blob "
                                f"from export_model starting with {MAGIC!r})")
    (length,) = _LENGTH.unpack_from(view, len(MAGIC))
    if head + length > len(view):
        raise InvalidModelError(f"{device}: import_model: truncated blob ({len(view)} bytes)")
    try:
        manifest = json.loads(bytes(view[head:head + length]))
    except ValueError as exc:
        raise InvalidModelError(f"{device}: import_model: corrupt manifest: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise InvalidModelError(f"{device}: import_model: not a NUMPY export of format "
                                f"{FORMAT} (got {str(got)[:40]!r})")
    return manifest


def _check(view: memoryview, manifest: dict[str, Any]) -> None:
    """Refuse a blob whose CRC-32 (manifest included) does not match."""
    crc = manifest.get("crc32")
    if not isinstance(crc, str) or len(crc) != 8:
        raise ValueError("no checksum")
    head = len(MAGIC) + _LENGTH.size
    (length,) = _LENGTH.unpack_from(view, len(MAGIC))
    text = bytes(view[:head + length])
    blank = text.replace(f'"crc32": "{crc}"'.encode(), _BLANK, 1)
    found = zlib.crc32(view[head + length:], zlib.crc32(blank)) & 0xFFFFFFFF
    if blank == text or f"{found:08x}" != crc:
        raise ValueError("checksum mismatch (truncated or corrupt)")


def _read_model(data: bytes, dynamic: bool) -> Model:
    if dynamic:  # compiled from later (new shapes): checked as any model read
        return load_model(data)
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise ValueError(f"the model's interface does not parse: {exc}") from exc
    return Model(proto)


def _arrays(entries: Any, data: memoryview, data_at: int) -> list[np.ndarray]:
    """The arrays of the blob: views of it where it is writable and aligned, else of one
    aligned copy (as NumPy's allocator would place them)."""
    if not isinstance(entries, list):
        raise ValueError("arrays is not a list")
    address = np.frombuffer(data, np.uint8).ctypes.data if len(data) else 0
    if data.readonly or address % _ALIGN:
        room = np.empty(len(data) + _ALIGN, np.uint8)
        skip = -room.ctypes.data % _ALIGN
        buffer = room[skip:skip + len(data)]
        buffer[:] = np.frombuffer(data, np.uint8)
    else:
        buffer = np.frombuffer(data, np.uint8)
    out = []
    for entry in entries:
        dtype = _dtype(entry["dtype"])
        shape = tuple(int(n) for n in entry["shape"])
        at, span, start = int(entry["at"]), int(entry["span"]), int(entry["start"])
        if any(n < 0 for n in shape) or at < 0 or span < 0 or start < 0 or at + span > len(data):
            raise ValueError(f"array entry {entry!r} out of range")
        if span == 0:
            if int(np.prod(shape)) != 0:
                raise ValueError(f"array entry {entry!r} has no data")
            out.append(np.empty(shape, dtype))
            continue
        strides = tuple(int(s) for s in entry["strides"])
        # numpy checks that the strided array stays inside the bytes it is given
        out.append(np.ndarray(shape, dtype, buffer[at:at + span], start, strides))
    return out


def _dtype(name: Any) -> np.dtype:
    if not isinstance(name, str):
        raise ValueError(f"dtype {name!r}")
    if name.startswith("ml:"):
        found = _ml_dtype(name[3:])
        if found is None:
            raise ValueError(f"dtype {name!r} (ml_dtypes not installed or no such type)")
        return found
    try:
        dtype = np.dtype(name)
    except TypeError as exc:
        raise ValueError(f"dtype {name!r}: {exc}") from None
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"dtype {name!r} is not a plain array type")
    return dtype


class _Reader:
    """Tagged JSON back to plan values (the inverse of :class:`_Writer`)."""

    def __init__(self, registry: KernelRegistry, arrays: list[np.ndarray]) -> None:
        self.registry = registry
        self.arrays = arrays

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, (bool, str, int, float)):
            return v
        if not isinstance(v, dict) or not isinstance(v.get("$"), str):
            raise ValueError(f"untagged value {str(v)[:80]!r}")
        tag = v["$"]
        if tag == "array":
            return self.arrays[int(v["i"])]
        if tag == "scalar":
            array = self.arrays[int(v["a"]["i"])]
            if array.ndim != 0:
                raise ValueError("a scalar that is not 0-d")
            return array[()]
        if tag == "strings":
            items = [self.value(x) for x in v["v"]]
            if not all(isinstance(x, (str, bytes)) for x in items):
                raise ValueError("a string array holding other values")
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.reshape(tuple(int(n) for n in v["shape"]))
        if tag == "dtype":
            return np.dtype(object) if v["v"] == "object" else _dtype(v["v"])
        if tag == "type":
            return np.object_ if v["v"] == "object" else _dtype(v["v"]).type
        if tag in ("list", "tuple"):
            items = [self.value(x) for x in v["v"]]
            return items if tag == "list" else tuple(items)
        if tag == "dict":
            return dict(zip((self.value(k) for k in v["k"]), (self.value(x) for x in v["v"]),
                            strict=True))
        if tag == "bytes":
            return bytes.fromhex(v["v"])
        if tag == "partial":
            fn = self.value(v["fn"])
            if not callable(fn):
                raise ValueError("a partial of a value that is not a function")
            return functools.partial(fn, *self.value(v["a"]),
                                     **{str(k): self.value(x) for k, x in v["k"].items()})
        if tag == "kernel":
            return self._kernel(v)
        if tag in _CLASSES:
            cls = _CLASSES[tag]
            names = {f.name for f in dataclasses.fields(cls)}
            fields = v["f"]
            if not isinstance(fields, dict) or not set(fields) <= names:
                raise ValueError(f"{tag} with fields {sorted(fields)}")
            return cls(**{k: self.value(x) for k, x in fields.items()})
        raise ValueError(f"unknown tag {tag!r}")

    def _kernel(self, v: dict[str, Any]) -> Any:
        domain, op, since = str(v["domain"]), str(v["op"]), int(v["since"])
        spec = self.registry.lookup(op, since, domain)
        if spec is None or spec.since != since:
            where = f"{domain}::{op}" if domain else op
            raise InvalidModelError(f"NUMPY: import_model: the blob needs the kernel of {where} "
                                    f"(opset {since}), which this NUMPY does not have (a "
                                    "custom operation not added with add_extension?)")
        return spec.fn
