"""An example plugin EP library: chains of float32 elementwise ops fused into one loop.

Register it and use it as onnxruntime users use a plugin EP::

    import aioinfer.onnxruntime as ort
    ort.register_execution_provider_library("FusedElementwise",
                                            "aioinfer.ort.ep.examples.fused_elementwise")
    devices = [d for d in ort.get_ep_devices() if d.ep_name == "FusedElementwise"]
    options = ort.SessionOptions()
    options.add_provider_for_devices(devices, {"min_chain": "2"})
    session = ort.InferenceSession("model.onnx", options)   # HETERO:FUSEDELEMENTWISE,CPU

``get_capability`` claims connected groups (at least ``min_chain`` nodes, default 2) of the
elementwise ops of :data:`codegen.SUPPORTED` whose values are float32 of one static shape;
their other operands (inputs, constants) broadcast to that shape, scalar constants become
literals. A group never leaves itself and comes back (no path from one of its nodes through
other nodes into another of its nodes), so it can run as one function. ``compile`` writes each
group as one loop nest over its output (:mod:`.codegen`) and compiles it with numba, so a
chain reads its inputs once and writes its outputs once instead of one pass and one
temporary per op. Without numba (or with the option ``compiler=numpy``) the group runs as
NumPy ufuncs op by op.

EP options: ``min_chain`` (integer >= 1), ``compiler`` (``numba`` or ``numpy``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from aioinfer.errors import InputShapeError, InvalidPropertyValueError
from aioinfer.graph.ir import node_reads
from aioinfer.model import Model
from aioinfer.ort.ep.api import (
    Ep,
    EpApi,
    EpDevice,
    EpFactory,
    GraphSupportInfo,
    HardwareDevice,
    NodeComputeContext,
    NodeComputeInfo,
    NodeFusionOptions,
    OrtHardwareDeviceType,
)
from aioinfer.runtime.streams import HOST_MEMORY, HostStream, SyncStream

from . import codegen
from .codegen import SUPPORTED, Group

numba: Any
try:
    import numba
except ImportError:  # pragma: no cover - numba is a test dependency
    numba = None


def group_of(model: Model) -> Group:
    """The :class:`~.codegen.Group` of a fused node's sub-model (its initializers are the
    EP's own: ``drop_constant_initializers``)."""
    graph = model.proto.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    scalars = {n: float(a.reshape(-1)[0]) for n, a in inits.items() if a.size == 1}
    read = {i for n in graph.node for i in n.input}
    arrays = [(n, np.ascontiguousarray(a, dtype=np.float32)) for n, a in inits.items()
              if a.size != 1 and n in read]
    inputs = [(i.name, _shape(model, i.name) or ()) for i in graph.input if i.name not in inits]
    outputs = [o.name for o in graph.output]
    shape = _shape(model, outputs[0])
    if shape is None:
        raise ValueError(f"fused_elementwise: the shape of {outputs[0]!r} is not static")
    return Group(inputs, arrays, scalars, list(graph.node), outputs, shape)


class FusedCompute:
    """The :class:`~aioinfer.ort.ep.api.NodeComputeInfo` of one group."""

    def __init__(self, group: Group, use_numba: bool, name: str = "") -> None:
        self.group = group
        self.name = name
        self.kernel = codegen.kernel(codegen.source(group)) if use_numba else None
        self.sizes = [int(np.prod(s)) for _, s in group.inputs]
        self.constants = [_read_only(a.reshape(-1)) for _, a in group.arrays]

    def create_state(self, context: NodeComputeContext) -> dict[str, Any]:
        return {"name": context.node_name, "allocator": context.allocator}

    def compute(self, state: Any, inputs: Sequence[Any]) -> list[Any]:
        flat = []
        for (name, shape), size, x in zip(self.group.inputs, self.sizes, inputs, strict=True):
            a = np.ascontiguousarray(x, dtype=np.float32)
            if a.size != size:  # the kernel indexes with the compiled strides, unchecked
                raise InputShapeError(f"{self.name or 'fused group'}: input {name!r} has shape "
                                      f"{list(a.shape)}, compiled for {list(shape)}",
                                      input_name=name)
            flat.append(a)
        if self.kernel is None:
            values = {name: a for (name, _), a in zip(self.group.inputs, flat, strict=True)}
            values.update(self.group.arrays)
            return codegen.run_numpy(self.group, values)
        allocate = state["allocator"].allocate  # the factory's (create_allocator) or the host's
        outs = [allocate(self.group.shape, np.float32) for _ in self.group.outputs]
        self.kernel(*[_read_only(a.reshape(-1)) for a in flat], *self.constants,
                    *[o.reshape(-1) for o in outs])
        return outs

    def release_state(self, state: Any) -> None:
        state.clear()


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view (the kernels are compiled for read-only operands)."""
    if not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


class FusedElementwiseEp(Ep):
    """Claims elementwise chains; compiles each into one fused kernel."""

    def __init__(self, name: str, min_chain: int, use_numba: bool) -> None:
        self.name = name
        self.min_chain = min_chain
        self.use_numba = use_numba
        self.runs = 0

    def get_capability(self, graph: onnx.GraphProto, info: GraphSupportInfo,
                       model: Model) -> None:
        for nodes in claim_groups(graph, model):
            if len(nodes) >= self.min_chain:
                info.add_nodes_to_fuse(nodes, NodeFusionOptions(drop_constant_initializers=True))

    def compile(self, graphs: Sequence[Model], fused_nodes: Sequence[onnx.NodeProto]
                ) -> list[NodeComputeInfo]:
        return [FusedCompute(group_of(g), self.use_numba, n.name)
                for g, n in zip(graphs, fused_nodes, strict=True)]

    def on_run_start(self, run_options: Any) -> None:
        self.runs += 1


def claim_groups(graph: onnx.GraphProto, model: Model) -> list[list[str]]:
    """Groups of supported nodes, in graph order: a node joins the group of a producer of
    one of its inputs when both make the same shape and no other input of the node depends
    on that group (a path out of the group and back in would make it a cycle)."""
    consts = {t.name: t for t in graph.initializer}
    producer: dict[str, str] = {}
    where: dict[str, int] = {}  # node -> group
    shape_of: list[tuple[int, ...]] = []
    groups: list[list[str]] = []
    before: dict[str, frozenset[int]] = {}  # value -> the groups among its ancestors
    for node in graph.node:
        reads = [v for v in node_reads(node) if v]
        seen = frozenset().union(*(before.get(v, frozenset()) for v in reads))
        shape = _supported(node, model, consts)
        joined = None
        if shape is not None:
            for v in node.input:
                g = where.get(producer.get(v, ""))
                if g is None or shape_of[g] != shape or joined is not None:
                    continue
                if all(where.get(producer.get(u, "")) == g or g not in before.get(u, ())
                       for u in reads):
                    joined = g
            if joined is None:
                joined = len(groups)
                groups.append([])
                shape_of.append(shape)
            groups[joined].append(node.name)
            where[node.name] = joined
            seen = seen | {joined}
        for out in node.output:
            if out:
                producer[out] = node.name
                before[out] = seen
    return groups


def _supported(node: onnx.NodeProto, model: Model, consts: Mapping[str, onnx.TensorProto]
               ) -> tuple[int, ...] | None:
    """The static float32 shape ``node`` makes if the EP can fuse it, else ``None``."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED \
            or len(node.output) != 1:
        return None
    shape = _shape(model, node.output[0])
    if shape is None:
        return None
    for k, name in enumerate(node.input):
        if not name:
            continue
        if node.op_type == "Clip" and k > 0:
            tensor = consts.get(name)  # bounds: scalar float32 constants
            if tensor is None or tensor.data_type != onnx.TensorProto.FLOAT \
                    or int(np.prod(tensor.dims)) != 1:
                return None
            continue
        other = _shape(model, name)
        if other is None or not _broadcasts(other, shape):
            return None
    return shape


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1], strict=False))


def _shape(model: Model, name: str) -> tuple[int, ...] | None:
    kind = model.value_type(name)
    if kind is None or not kind.HasField("tensor_type"):
        return None
    tensor = kind.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT or not tensor.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    return None if any(d < 0 for d in dims) else tuple(dims)


class HostTransfer:
    """The EP's data transfer: host memory to host memory, handed over as it is (a copy only
    where an array is not C-contiguous, which the loops need)."""

    def can_copy(self, src_device: str, dst_device: str) -> bool:
        return src_device == dst_device == HOST_MEMORY

    def copy_tensors(self, sources: Sequence[Any], dst_device: str,
                     stream: SyncStream | None = None) -> list[Any]:
        return [np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v for v in sources]


class FusedElementwiseFactory(EpFactory):
    """The factory: CPU devices, one EP per session, host streams and transfers."""

    def __init__(self, registration_name: str, api: EpApi) -> None:
        super().__init__(registration_name)
        self.api = api
        self.live: list[FusedElementwiseEp] = []

    def get_vendor(self) -> str:
        return "aioinfer"

    def get_version(self) -> str:
        return "0.2.0"

    def get_supported_devices(self, devices: Sequence[HardwareDevice]) -> list[EpDevice]:
        return [self.api.create_ep_device(self, d, {"version": self.get_version(),
                                                    "compiler": "numba" if numba else "numpy"},
                                          {"min_chain": "2"})
                for d in devices if d.type == OrtHardwareDeviceType.CPU]

    def create_ep(self, devices: Sequence[EpDevice], session_options: Mapping[str, str]
                  ) -> FusedElementwiseEp:
        text = session_options.get("min_chain", "2")
        if not text.isdigit() or int(text) < 1:
            raise InvalidPropertyValueError(
                f"{self.get_name()}: option min_chain must be an integer >= 1, got {text!r}",
                key="min_chain", device=self.get_name())
        compiler = session_options.get("compiler", "numba")
        if compiler not in ("numba", "numpy"):
            raise InvalidPropertyValueError(
                f"{self.get_name()}: option compiler must be numba or numpy, got {compiler!r}",
                key="compiler", device=self.get_name())
        ep = FusedElementwiseEp(self.get_name(), int(text), numba is not None
                                and compiler == "numba")
        self.live.append(ep)
        return ep

    def release_ep(self, ep: Ep) -> None:
        if ep in self.live:
            self.live.remove(ep)

    def create_data_transfer(self) -> HostTransfer:
        return HostTransfer()

    def is_stream_aware(self) -> bool:
        return True

    def create_sync_stream_for_device(self, memory_device: str) -> HostStream | None:
        return HostStream() if memory_device == HOST_MEMORY else None


def create_ep_factories(registration_name: str, api: EpApi, max_factories: int
                        ) -> list[FusedElementwiseFactory]:
    """The library's entry point (onnxruntime's ``CreateEpFactories``)."""
    return [FusedElementwiseFactory(registration_name, api)][:max_factories]


def release_ep_factory(factory: FusedElementwiseFactory) -> None:
    """The library's exit point (onnxruntime's ``ReleaseEpFactory``)."""
    factory.live.clear()
