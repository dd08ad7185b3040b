"""The NUMPY plugin: ONNX graphs compiled to flat plans of NumPy kernels."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from ... import properties as P
from ... import weights
from ...extensions import Op, check_op
from ...graph.specialize import has_dynamic_inputs, with_input_shapes
from ...model import Model
from ...properties import Property, PropertySet, resolve_streams
from ...tensor import RemoteContext
from ..base import CompiledModel, Plugin, Stage, SyncInferRequest
from .compiler import compile_graph
from .custom_ops import kernel_spec
from .export import Snapshot, export_model, import_model
from .kernels import jit
from .kernels.blas_mode import lone_stream, stream_finished, stream_started
from .kernels.parallel import set_intra_threads
from .kernels.placement import pinned_run
from .plan import Plan, ShapeSpecializedPlan
from .profiling import PlanProfiler
from .registry import KernelRegistry
from .threads import per_stream, set_blas_threads

# Fused kernels that cut their work over the intra-op pool (kernels/parallel.run_blocks).
_OWN_POOL_OPS = frozenset({"FusedConv", "WinogradConv", "ChannelAffine", "MaxPool",
                           "AveragePool", "LpPool"})


def _specs(device: str) -> list[Property]:
    return [
        Property(P.FULL_DEVICE_NAME, "human-readable device name", mutable=False,
                 default=f"{device} (NumPy {__import__('numpy').__version__} on host CPU)"),
        Property(P.PERFORMANCE_HINT, "LATENCY, THROUGHPUT or CUMULATIVE_THROUGHPUT",
                 validate=P.performance_mode, default=P.PerformanceMode.LATENCY),
        Property(P.NUM_STREAMS, "parallel streams (0 = from the hint)", validate=P.streams,
                 default=0),
        Property(P.INFERENCE_NUM_THREADS, "threads for kernels (0 = all cores)",
                 validate=P.non_negative_int, default=0),
        Property(P.INFERENCE_PRECISION_HINT, "f32 (default)", validate=P.precision,
                 default="f32"),
        Property(P.PERFORMANCE_HINT_NUM_REQUESTS, "requests the app keeps in flight (0 = any)",
                 validate=P.non_negative_int, default=0),
        Property(P.PERF_COUNT, "collect per-node profiling", validate=P.boolean, default=False),
        Property(P.ENABLE_CPU_PINNING, "hold a lone run's thread and its intra-op helpers on "
                 "different cores for the run (Linux; kernels/placement.py)",
                 validate=P.boolean, default=True),
        Property(jit.PROPERTY, "use the compiled (numba) kernels where they apply, chosen "
                 "once per compiled model (kernels/jit; default: numba installed and "
                 "AIOINFER_JIT not 0)", validate=P.boolean, default=jit.default_enabled()),
        Property(P.OPTIMIZATION_CAPABILITIES, "what the device can do", mutable=False,
                 default=["FP32"]),
        Property(P.DEVICE_UUID, "the host CPU's UUID (the CPU proxy groups plugins by it)",
                 mutable=False, getter=P.host_cpu_uuid),
    ]


class NumpyPlugin(Plugin):
    """Our own engine: a plan compiler and NumPy kernels, on the host CPU."""

    runs_operations = True
    verifies_imports = True  # import_model checks the blob's checksum itself (export.py)

    def __init__(self, name: str = "NUMPY") -> None:
        self.name = name
        self.properties = PropertySet(_specs(name), name)
        self.kernels = KernelRegistry()  # the built-ins plus this instance's custom ops

    def add_operations(self, ops: Iterable[type[Op]]) -> None:
        """Run these custom operations (:class:`aioinfer.Op`) in models compiled from now on
        (this plugin instance only: its Core's ``add_extension``)."""
        for cls in ops:
            self.kernels.add(kernel_spec(check_op(cls)))

    def create_context(self, params: Mapping[str, Any]) -> RemoteContext:
        """A context whose tensors are host arrays the plan reads and writes in place."""
        return RemoteContext(self.name, params)

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> NumpyCompiledModel:
        props = PropertySet(_specs(self.name), self.name, **self._settable())
        props.set(config)
        graph, kw = model.proto.graph, _function_kw(model)
        kw["registry"] = self.kernels
        compiled_tier = props.get(jit.PROPERTY)
        share = weights.active()  # ep.share_ep_contexts: equal weights as one array
        built = _pooled(compile_graph(graph, model.opsets, device=self.name, **kw), share)
        exportable = Snapshot(built)  # export.py: the plan before the compiled tier rewrites it
        generic = jit.specialise(built, compiled_tier)
        plan: Plan | ShapeSpecializedPlan = generic
        if has_dynamic_inputs(graph):
            names = generic.input_names

            def compile_for(shapes: tuple[tuple[int, ...], ...]) -> Plan:
                static = with_input_shapes(graph, dict(zip(names, shapes, strict=True)))
                return jit.specialise(_pooled(compile_graph(static, model.opsets,
                                                            device=self.name, **kw), share),
                                      compiled_tier)

            plan = ShapeSpecializedPlan(generic, compile_for)
        compiled = NumpyCompiledModel(self, model, props, plan)
        compiled.exportable = exportable
        return compiled

    def import_model(self, blob: bytes, config: Mapping[str, Any]) -> NumpyCompiledModel:
        """A compiled model from :meth:`NumpyCompiledModel.export_model`'s blob, without
        compiling the graph (:mod:`.export`); ``config`` overrides the config stored in it."""
        return import_model(self, blob, config)

    def _settable(self) -> dict[str, Any]:
        supported = self.properties.supported()
        return {k: self.properties.get(k) for k, rw in supported.items() if rw == "RW"}

    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        opsets = model.opsets
        local = {(f.domain, f.name) for f in model.proto.functions}
        supported = {}
        for node in model.proto.graph.node:
            domain = "" if node.domain == "ai.onnx" else node.domain
            if (node.domain, node.op_type) in local or self.kernels.lookup(
                node.op_type, opsets.get(domain, 10**6), domain
            ):
                supported[node.name] = self.name
        return supported


def _pooled(plan: Plan, share: bool) -> Plan:
    """``plan`` with its constants from :data:`aioinfer.weights.POOL` when ``share``."""
    if not share:
        return plan
    return dataclasses.replace(plan, constants=weights.POOL.share_all(plan.constants))


def _function_kw(model: Model) -> dict[str, Any]:
    import inspect

    if model.proto.functions and "functions" in inspect.signature(compile_graph).parameters:
        return {"functions": list(model.proto.functions)}
    return {}


class NumpyCompiledModel(CompiledModel):
    """A model compiled to one :class:`Plan`; streams are worker threads of one executor."""

    def __init__(self, plugin: NumpyPlugin, model: Model, props: PropertySet,
                 plan: Plan | ShapeSpecializedPlan) -> None:
        super().__init__(plugin, model, props)
        self.plan = plan
        self.streams = resolve_streams(
            props.get(P.PERFORMANCE_HINT), props.get(P.NUM_STREAMS),
            props.get(P.PERFORMANCE_HINT_NUM_REQUESTS),
        )
        self.executor = self.lease_executor(self.streams)
        # LATENCY: one stream using every core; THROUGHPUT: one stream per core. A stream's
        # threads split its big products (kernels/parallel.py) over single-threaded BLAS calls:
        # a spinning multi-threaded BLAS pool loses several times over on a loaded machine.
        self.threads_per_stream = per_stream(props.get(P.INFERENCE_NUM_THREADS), self.streams)
        self.blas_threads_ok = not any(s.op_type in _OWN_POOL_OPS for s in plan.steps)
        # A plan cutting work over our own pool keeps that pool off its runner's core; one on
        # BLAS threads must not pin its runner (a spinning BLAS worker could share its core).
        self.pinned_pool = self.threads_per_stream if not self.blas_threads_ok else 0
        set_blas_threads(1)
        self.properties = PropertySet(
            [
                *_specs(plugin.name),
                Property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS, "requests to keep in flight",
                         mutable=False, getter=lambda: self.streams),
                Property(P.EXECUTION_DEVICES, "devices this model runs on", mutable=False,
                         getter=lambda: [plugin.name]),
                Property(P.MODEL_NAME, "the model's graph name", mutable=False,
                         getter=lambda: model.name),
            ],
            plugin.name,
            **{k: v for k, v in props.as_dict().items() if props.supported()[k] == "RW"},
        )

    exportable: Snapshot | None = None  # the plan as compiled, for export_model

    def export_model(self) -> bytes:
        """The compiled plan as data (no code, no pickle); see :mod:`.export`."""
        return export_model(self)

    def create_sync_request(self) -> NumpyInferRequest:
        return NumpyInferRequest(self)


class NumpyInferRequest(SyncInferRequest):
    """Runs the plan as one stage on the compiled model's executor."""

    compiled: NumpyCompiledModel

    def stages(self) -> list[Stage]:
        return [Stage("infer", self.compiled.executor, self._infer)]

    _profiler: PlanProfiler | None = None

    def _infer(self) -> None:
        set_intra_threads(self.compiled.threads_per_stream)
        stream_started(self.compiled.blas_threads_ok)  # see kernels/blas_mode.py
        try:
            # only a lone run is held on its core: concurrent callers must stay free to spread
            pool = self.compiled.pinned_pool
            pin = pool and lone_stream() and self.compiled.get_property(P.ENABLE_CPU_PINNING)
            with pinned_run(pool if pin else 0):
                self.outputs = self._run(self.compiled.plan)
        finally:
            stream_finished()

    def _run(self, plan: Any) -> list[Any]:
        if not self.compiled.get_property(P.PERF_COUNT):
            return plan.run(self.inputs)
        if self._profiler is None:
            self._profiler = PlanProfiler()
        self._profiler.start()
        concrete = plan.plan_for(self.inputs) if hasattr(plan, "plan_for") else plan
        return self._profiler.profiled(concrete).run(self.inputs)

    def profiling_info(self) -> list[dict[str, Any]]:
        """Each plan step of the last inference, in run order (with PERF_COUNT on)."""
        return list(self._profiler.records) if self._profiler is not None else []
