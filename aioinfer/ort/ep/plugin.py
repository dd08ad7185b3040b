"""EpPlugin: a plugin EP's factory as an aioinfer :class:`~aioinfer.Plugin`.

- ``query_model`` asks the EP's ``get_capability`` and returns every node it claimed, so
  ``HETERO:<EP>,NUMPY`` places the rest on NUMPY (onnxruntime's rule that no unclaimed node
  lies between two nodes of one fused group is HETERO's acyclic-partition rule);
- ``compile_model`` (of the whole model, or of the subgraph HETERO gives it) runs
  ``get_capability`` again, cuts each claimed group out as a sub-model, hands them to the EP's
  ``compile`` and runs the returned :class:`~aioinfer.ort.ep.api.NodeComputeInfo` objects in
  topological order as one stage, between the EP's ``on_run_start`` and ``on_run_end``
  (called after a failed run too); each request's ``create_state`` gets the factory's
  ``create_allocator`` for the EP's memory device in its context; an EP preferring NHWC
  gets its layout-sensitive nodes converted (:mod:`.layout`);
- ``sync_stream`` / ``data_transfer`` are the factory's (``create_sync_stream_for_device`` /
  ``create_data_transfer``), the host's when it has none: HETERO's transfer stages use them.

Options reach the EP as onnxruntime routes them: ``ep.<ep name in lower case>.<key>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from ... import properties as P
from ...errors import InferenceError, UnsupportedOperationError
from ...graph.ir import node_reads
from ...model import Model
from ...plugins.base import CompiledModel, Plugin, Stage, SyncInferRequest
from ...properties import Property, PropertySet
from ...runtime.streams import HOST_STREAM, HOST_TRANSFER, DataTransfer, SyncStream
from . import layout
from .api import (
    HOST_ALLOCATOR,
    Allocator,
    Ep,
    EpDevice,
    EpFactory,
    GraphSupportInfo,
    NodeComputeContext,
    NodeComputeInfo,
)
from .layout import TO_NCHW, TO_NHWC, LayoutPlan


def _specs(name: str, full: str) -> list[Property]:
    return [
        Property(P.FULL_DEVICE_NAME, "human-readable device name", mutable=False, default=full),
        Property(P.PERF_COUNT, "collect per-group profiling", validate=P.boolean, default=False),
        Property(P.PERFORMANCE_HINT, "LATENCY or THROUGHPUT", validate=P.performance_mode,
                 default=P.PerformanceMode.LATENCY),
        Property(P.NUM_STREAMS, "parallel streams (0 = from the hint)", validate=P.streams,
                 default=0),
        Property(P.PERFORMANCE_HINT_NUM_REQUESTS, "requests in flight (0 = any)",
                 validate=P.non_negative_int, default=0),
    ]


class EpPlugin(Plugin):
    """The aioinfer device of one plugin EP factory."""

    def __init__(self, name: str, factory: EpFactory, devices: Sequence[EpDevice]) -> None:
        self.name = name
        self.factory = factory
        self.ep_devices = list(devices)
        self.prefix = f"ep.{factory.get_name().lower()}."
        full = f"{factory.get_name()} ({factory.get_vendor()} plugin EP {factory.get_version()})"
        self.properties = PropertySet(_specs(name, full), name)
        if self.ep_devices:  # before the stream is made for it
            self.memory_device = self.ep_devices[0].device.memory_device
        stream = factory.create_sync_stream_for_device(self.memory_device) \
            if factory.is_stream_aware() else None
        self._stream = stream or HOST_STREAM
        self._transfer = factory.create_data_transfer() or HOST_TRANSFER

    def is_available(self) -> bool:
        return bool(self.ep_devices)

    def sync_stream(self) -> SyncStream:
        return self._stream

    def data_transfer(self) -> DataTransfer:
        return self._transfer

    def _split(self, config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        props = {k: v for k, v in config.items() if not str(k).startswith(self.prefix)}
        options = {str(k)[len(self.prefix):]: str(v) for k, v in config.items()
                   if str(k).startswith(self.prefix)}
        return props, options

    def _ep(self, options: Mapping[str, str]) -> Ep:
        if not self.ep_devices:
            raise UnsupportedOperationError(f"{self.name}: the EP supports no device here",
                                            device=self.name)
        return self.factory.create_ep(self.ep_devices, dict(options))

    def _capability(self, ep: Ep, model: Model) -> GraphSupportInfo:
        info = GraphSupportInfo(model.proto.graph)
        ep.get_capability(model.proto.graph, info, model)
        return info

    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        _, options = self._split(config)
        ep = self._ep(options)
        try:
            return dict.fromkeys(sorted(self._capability(ep, model).claimed()), self.name)
        finally:
            self.factory.release_ep(ep)

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> EpCompiledModel:
        settings, options = self._split(config)
        props = PropertySet(_specs(self.name, self.properties.get(P.FULL_DEVICE_NAME)),
                            self.name, **{k: self.properties.get(k) for k, rw in
                                          self.properties.supported().items() if rw == "RW"})
        props.set(settings)
        ep = self._ep(options)
        info = self._capability(ep, model)
        missing = [n for n in model.proto.graph.node if n.name not in info.claimed()]
        if missing:
            self.factory.release_ep(ep)
            node = missing[0]
            raise UnsupportedOperationError(
                f"{self.name}: the EP does not claim node {node.name!r} ({node.op_type}); run "
                f"the model on HETERO:{self.name},NUMPY", node=node.name, op_type=node.op_type,
                device=self.name)
        groups = _ordered_groups(model, info)
        graphs, fused, layouts = [], [], []
        try:
            for k, (nodes, ins, outs) in enumerate(groups):
                sub = model.extract(nodes, ins, outs, name=f"{self.name}_fused_{k}")
                converted = layout.plan(ep, model, nodes, ins, outs, self.name)
                if converted is not None:
                    sub = layout.rewrite(sub, *converted)
                graphs.append(sub)
                layouts.append(None if converted is None else converted[1])
                fused.append(onnx.helper.make_node(f"{self.name}_fused_{k}", ins, outs,
                                                   name=f"{self.name}_fused_{k}",
                                                   domain=self.factory.get_name()))
            infos = ep.compile(graphs, fused)
        except BaseException:
            self.factory.release_ep(ep)
            raise
        if len(infos) != len(groups):
            self.factory.release_ep(ep)
            raise InferenceError(f"{self.name}: compile returned {len(infos)} compute infos "
                                 f"for {len(groups)} fused nodes", device=self.name)
        allocator = self.factory.create_allocator(self.memory_device) or HOST_ALLOCATOR
        return EpCompiledModel(self, model, props, ep,
                               list(zip(fused, infos, layouts, strict=True)), allocator)


def _ordered_groups(model: Model, info: GraphSupportInfo
                    ) -> list[tuple[list[str], list[str], list[str]]]:
    """Each group as (nodes, inputs, outputs), groups in an order that runs (HETERO gives
    the EP acyclic subgraphs; a group reading another's output runs after it)."""
    graph = model.proto.graph
    group_of = {n: k for k, g in enumerate(info.groups) for n in g.nodes}
    produced_by: dict[str, int] = {}
    for node in graph.node:
        for out in node.output:
            if out:
                produced_by[out] = group_of[node.name]
    consts = {t.name for t in graph.initializer}
    graph_outs = {o.name for o in graph.output}
    readers: dict[str, set[int]] = {}
    for node in graph.node:
        for name in node_reads(node):
            readers.setdefault(name, set()).add(group_of[node.name])
    shapes = []
    for k, group in enumerate(info.groups):
        members = set(group.nodes)
        nodes = [n for n in graph.node if n.name in members]
        made = {o for n in nodes for o in n.output if o}
        ins = list(dict.fromkeys(v for n in nodes for v in node_reads(n)
                                 if v and v not in made and v not in consts))
        outs = [o for o in made if o in graph_outs or readers.get(o, set()) - {k}]
        outs.sort(key=lambda o: [x for n in nodes for x in n.output].index(o))
        shapes.append((group.nodes, ins, outs, k))
    ordered: list[tuple[list[str], list[str], list[str]]] = []
    done: set[int] = set()
    while len(done) < len(shapes):
        progress = False
        for nodes, ins, outs, k in shapes:
            if k in done:
                continue
            if all(produced_by.get(v, k) in done | {k} for v in ins):
                ordered.append((nodes, ins, outs))
                done.add(k)
                progress = True
        if not progress:
            raise UnsupportedOperationError("the EP's groups depend on each other in a cycle")
    return ordered


class EpCompiledModel(CompiledModel):
    """Fused groups run in order as one stage on the plugin's executor."""

    def __init__(self, plugin: EpPlugin, model: Model, props: PropertySet, ep: Ep,
                 kernels: list[tuple[onnx.NodeProto, NodeComputeInfo, LayoutPlan | None]],
                 allocator: Allocator = HOST_ALLOCATOR) -> None:
        super().__init__(plugin, model, props)
        self.ep = ep
        self.kernels = kernels
        self.allocator = allocator
        self.streams = P.resolve_streams(props.get(P.PERFORMANCE_HINT),
                                         props.get(P.NUM_STREAMS),
                                         props.get(P.PERFORMANCE_HINT_NUM_REQUESTS))
        self.executor = self.lease_executor(self.streams)
        name = plugin.name
        self.properties = PropertySet([
            *_specs(name, props.get(P.FULL_DEVICE_NAME)),
            Property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS, "requests to keep in flight",
                     mutable=False, getter=lambda: self.streams),
            Property(P.EXECUTION_DEVICES, "devices this model runs on", mutable=False,
                     getter=lambda: [name]),
            Property(P.MODEL_NAME, "the model's graph name", mutable=False,
                     getter=lambda: model.name),
        ], name, **{k: v for k, v in props.as_dict().items() if props.supported()[k] == "RW"})

    def create_sync_request(self) -> EpInferRequest:
        return EpInferRequest(self)

    def release(self, timeout: float | None = 5.0) -> None:
        if not self.released:
            self.plugin.factory.release_ep(self.ep)  # type: ignore[attr-defined]
        super().release(timeout)


class EpInferRequest(SyncInferRequest):
    """Holds one state per fused node (``create_state`` once per request)."""

    compiled: EpCompiledModel

    def __init__(self, compiled: EpCompiledModel) -> None:
        super().__init__(compiled)
        self.states = [info.create_state(NodeComputeContext(node.name, compiled.allocator))
                       for node, info, _ in compiled.kernels]

    def stages(self) -> list[Stage]:
        return [Stage("ep", self.compiled.executor, self._infer)]

    def _infer(self) -> None:
        compiled = self.compiled
        values = {p.name: v for p, v in zip(compiled.inputs, self.inputs, strict=True)}
        compiled.ep.on_run_start(None)
        try:
            for (node, info, plan), state in zip(compiled.kernels, self.states, strict=True):
                args = [values[name] for name in node.input]
                if plan is None:
                    outs = info.compute(state, args)
                else:  # NHWC around the fused node (layout.py)
                    for k in plan.inputs:
                        args[k] = np.ascontiguousarray(np.transpose(args[k], TO_NHWC))
                    outs = list(info.compute(state, args))
                    for k in plan.outputs:
                        outs[k] = np.ascontiguousarray(np.transpose(outs[k], TO_NCHW))
                if len(outs) != len(node.output):
                    raise InferenceError(f"{compiled.plugin.name}: compute of {node.name!r} "
                                         f"returned {len(outs)} outputs for "
                                         f"{len(node.output)}", node=node.name,
                                         device=compiled.plugin.name)
                values.update(zip(node.output, outs, strict=True))
        finally:
            compiled.ep.on_run_end(None, compiled.plugin.sync_stream())
        self.outputs = [values[p.name] for p in compiled.outputs]

    def __del__(self) -> None:
        for (_, info, _), state in zip(self.compiled.kernels, getattr(self, "states", []),
                                       strict=False):
            info.release_state(state)
