"""An example plugin EP library: chains of float32 elementwise ops fused into one loop.

Register it and use it as onnxruntime users use a plugin EP::

    import aioinfer.onnxruntime as ort
    ort.register_execution_provider_library("FusedElementwise",
                                            "aioinfer.ort.ep.examples.fused_elementwise")
    devices = [d for d in ort.get_ep_devices() if d.ep_name == "FusedElementwise"]
    options = ort.SessionOptions()
    options.add_provider_for_devices(devices, {"min_chain": "2"})
    session = ort.InferenceSession("model.onnx", options)   # HETERO:FUSEDELEMENTWISE,CPU

``get_capability`` claims connected groups (at least ``min_chain`` nodes, default 2) of
elementwise ops (:data:`UNARY`, :data:`BINARY`, ``Clip``, ``LeakyRelu``) whose tensors are all
float32 of one static shape, constants being float32 scalars. ``compile`` writes each group as
one loop over the elements and compiles it with numba (``nogil``: runs release the GIL), so a
chain reads its inputs once and writes its outputs once instead of one pass and one temporary
per op. Without numba the group runs as NumPy ufuncs writing into reused buffers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

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

UNARY = {"Relu": "max({0}, ZERO)", "Sigmoid": "ONE / (ONE + np.exp(-{0}))",
         "Tanh": "np.tanh({0})", "Exp": "np.exp({0})", "Log": "np.log({0})",
         "Sqrt": "np.sqrt({0})", "Abs": "abs({0})", "Neg": "-{0}", "Reciprocal": "ONE / {0}"}
BINARY = {"Add": "{0} + {1}", "Sub": "{0} - {1}", "Mul": "{0} * {1}", "Div": "{0} / {1}",
          "Max": "max({0}, {1})", "Min": "min({0}, {1})"}
_NUMPY_UNARY: dict[str, Callable[..., Any]] = {
    "Sigmoid": lambda x, out: np.divide(1, np.add(1, np.exp(np.negative(x, out=out), out=out),
                                                  out=out), out=out),
    "Relu": lambda x, out: np.maximum(x, np.float32(0), out=out), "Tanh": np.tanh,
    "Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt, "Abs": np.abs, "Neg": np.negative,
    "Reciprocal": lambda x, out: np.divide(np.float32(1), x, out=out)}
_NUMPY_BINARY: dict[str, Callable[..., Any]] = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
    "Max": np.maximum, "Min": np.minimum}

numba: Any
try:
    import numba
except ImportError:  # pragma: no cover - numba is a test dependency
    numba = None

_KERNELS: dict[str, Callable[..., None]] = {}
_KERNELS_LOCK = threading.Lock()


def _f32(value: float) -> str:
    return f"np.float32({float(value)!r})"


class _Group:
    """One fused group: its nodes in order, inputs, outputs and scalar constants."""

    def __init__(self, model: Model) -> None:
        graph = model.proto.graph
        self.inputs = [i.name for i in graph.input
                       if i.name not in {t.name for t in graph.initializer}]
        self.outputs = [o.name for o in graph.output]
        self.constants = {t.name: float(numpy_helper.to_array(t).reshape(-1)[0])
                          for t in graph.initializer}
        self.nodes = list(graph.node)

    def source(self) -> str:
        """The numba kernel: one loop, one local per value."""
        local = {name: f"v{k}" for k, name in enumerate([*self.inputs, *(
            o for n in self.nodes for o in n.output)])}
        for name, value in self.constants.items():
            local[name] = _f32(value)
        args = [f"x{k}" for k in range(len(self.inputs))] + [
            f"y{k}" for k in range(len(self.outputs))]
        lines = [f"def kernel({', '.join(args)}):", "    for i in numba.prange(x0.size):"]
        lines += [f"        {local[n]} = x{k}[i]" for k, n in enumerate(self.inputs)]
        for node in self.nodes:
            lines.append(f"        {local[node.output[0]]} = np.float32({_expr(node, local)})")
        lines += [f"        y{k}[i] = {local[n]}" for k, n in enumerate(self.outputs)]
        return "\n".join(lines) + "\n"

    def run_numpy(self, values: dict[str, Any], shape: tuple[int, ...]) -> None:
        """The fallback without numba: ufuncs writing into one buffer per value."""
        for node in self.nodes:
            out = np.empty(shape, np.float32)
            args = [values.get(i, np.float32(self.constants.get(i, 0.0))) for i in node.input
                    if i]
            op = node.op_type
            if op in _NUMPY_BINARY:
                _NUMPY_BINARY[op](args[0], args[1], out=out)
            elif op == "Clip":
                np.clip(args[0], *[np.float32(a) for a in args[1:3]], out=out)
            elif op == "LeakyRelu":
                alpha = np.float32(_attr(node, "alpha", 0.01))
                np.multiply(args[0], alpha, out=out)
                np.copyto(out, args[0], where=args[0] >= 0)
            else:
                _NUMPY_UNARY[op](args[0], out=out)
            values[node.output[0]] = out


def _attr(node: onnx.NodeProto, name: str, default: float) -> float:
    for attr in node.attribute:
        if attr.name == name:
            return float(onnx.helper.get_attribute_value(attr))
    return default


def _expr(node: onnx.NodeProto, local: Mapping[str, str]) -> str:
    ins = [local[i] for i in node.input if i]
    op = node.op_type
    if op in BINARY:
        return BINARY[op].format(*ins)
    if op in UNARY:
        return UNARY[op].format(ins[0])
    if op == "LeakyRelu":
        alpha = _f32(_attr(node, "alpha", 0.01))
        return f"{ins[0]} if {ins[0]} >= ZERO else {ins[0]} * {alpha}"
    if op == "Clip":
        value = ins[0]
        if len(ins) > 1 and node.input[1]:
            value = f"max({value}, {local[node.input[1]]})"
        if len(ins) > 2 and node.input[2]:
            value = f"min({value}, {local[node.input[2]]})"
        return value
    raise ValueError(f"no expression for {op}")


def _numba_kernel(source: str) -> Callable[..., None]:
    with _KERNELS_LOCK:
        kernel = _KERNELS.get(source)
    if kernel is None:
        scope: dict[str, Any] = {"np": np, "numba": numba, "ZERO": np.float32(0),
                                 "ONE": np.float32(1)}
        exec(compile(source, "<fused_elementwise>", "exec"), scope)  # our own generated code
        kernel = numba.njit(nogil=True, cache=False, parallel=True)(scope["kernel"])
        with _KERNELS_LOCK:
            kernel = _KERNELS.setdefault(source, kernel)
    return kernel


class FusedCompute:
    """The :class:`~aioinfer.ort.ep.api.NodeComputeInfo` of one group."""

    def __init__(self, group: _Group, use_numba: bool) -> None:
        self.group = group
        self.kernel = _numba_kernel(group.source()) if use_numba else None

    def create_state(self, context: NodeComputeContext) -> dict[str, Any]:
        return {"name": context.node_name}

    def compute(self, state: Any, inputs: Sequence[Any]) -> list[Any]:
        arrays = [np.ascontiguousarray(x, dtype=np.float32) for x in inputs]
        shape = arrays[0].shape
        if self.kernel is None:
            values = dict(zip(self.group.inputs, arrays, strict=True))
            self.group.run_numpy(values, shape)
            return [values[o] for o in self.group.outputs]
        outs = [np.empty(shape, np.float32) for _ in self.group.outputs]
        self.kernel(*[a.reshape(-1) for a in arrays], *[o.reshape(-1) for o in outs])
        return outs

    def release_state(self, state: Any) -> None:
        state.clear()


class FusedElementwiseEp(Ep):
    """Claims elementwise chains; compiles each into one fused kernel."""

    def __init__(self, name: str, min_chain: int, use_numba: bool) -> None:
        self.name = name
        self.min_chain = min_chain
        self.use_numba = use_numba
        self.runs = 0

    def get_capability(self, graph: onnx.GraphProto, info: GraphSupportInfo,
                       model: Model) -> None:
        scalars = {t.name for t in graph.initializer
                   if t.data_type == onnx.TensorProto.FLOAT and int(np.prod(t.dims)) == 1}
        ok = [n for n in graph.node if _supported(n, model, scalars)]
        claimed = {n.name for n in ok}
        parent = {n.name: n.name for n in ok}

        def root(name: str) -> str:
            while parent[name] != name:
                parent[name] = parent[parent[name]]
                name = parent[name]
            return name

        producer = {o: n.name for n in ok for o in n.output}
        for node in ok:
            for name in node.input:
                if name in producer and producer[name] in claimed:
                    parent[root(node.name)] = root(producer[name])
        groups: dict[str, list[str]] = {}
        for node in ok:
            groups.setdefault(root(node.name), []).append(node.name)
        for nodes in groups.values():
            if len(nodes) >= self.min_chain:
                info.add_nodes_to_fuse(nodes, NodeFusionOptions(drop_constant_initializers=True))

    def compile(self, graphs: Sequence[Model], fused_nodes: Sequence[onnx.NodeProto]
                ) -> list[NodeComputeInfo]:
        return [FusedCompute(_Group(g), self.use_numba) for g in graphs]

    def on_run_start(self, run_options: Any) -> None:
        self.runs += 1


def _supported(node: onnx.NodeProto, model: Model, scalars: set[str]) -> bool:
    if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return False
    if node.op_type not in UNARY and node.op_type not in BINARY and node.op_type not in (
            "Clip", "LeakyRelu"):
        return False
    shape = _float_shape(model, node.output[0])
    if shape is None:
        return False
    for k, name in enumerate(node.input):
        if not name or name in scalars:
            continue
        if node.op_type == "Clip" and k > 0:
            return False  # bounds must be constants
        if _float_shape(model, name) != shape:
            return False
    return True


def _float_shape(model: Model, name: str) -> tuple[int, ...] | None:
    kind = model.value_type(name)
    if kind is None or not kind.HasField("tensor_type"):
        return None
    tensor = kind.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT or not tensor.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
    return None if any(d < 0 for d in dims) else tuple(dims)


class HostTransfer:
    """The EP's data transfer: host memory to host memory, made C-contiguous for the loop."""

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
        return "0.1.0"

    def get_supported_devices(self, devices: Sequence[HardwareDevice]) -> list[EpDevice]:
        return [self.api.create_ep_device(self, d, {"version": self.get_version(),
                                                    "compiler": "numba" if numba else "numpy"},
                                          {"min_chain": "2"})
                for d in devices if d.type == OrtHardwareDeviceType.CPU]

    def create_ep(self, devices: Sequence[EpDevice], session_options: Mapping[str, str]
                  ) -> FusedElementwiseEp:
        text = session_options.get("min_chain", "2")
        if not text.isdigit() or int(text) < 1:
            from aioinfer.errors import InvalidPropertyValueError

            raise InvalidPropertyValueError(
                f"{self.get_name()}: option min_chain must be an integer >= 1, got {text!r}",
                key="min_chain", device=self.get_name())
        use_numba = numba is not None and session_options.get("compiler", "numba") == "numba"
        ep = FusedElementwiseEp(self.get_name(), int(text), use_numba)
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
