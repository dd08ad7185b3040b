"""A plugin EP library for the tests: the example EP, recording each hook the session calls
(loaded by path through ``register_execution_provider_library``, as a user's library is)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import onnx

from aioinfer.model import Model
from aioinfer.ort.ep.api import EpApi, EpDevice, GraphSupportInfo, NodeComputeContext
from aioinfer.ort.ep.examples import fused_elementwise as base

CALLS: list[str] = []


class RecordingCompute(base.FusedCompute):
    def create_state(self, context: NodeComputeContext) -> dict[str, Any]:
        CALLS.append(f"create_state:{context.node_name}")
        return super().create_state(context)

    def compute(self, state: Any, inputs: Sequence[Any]) -> list[Any]:
        CALLS.append("compute")
        return super().compute(state, inputs)

    def release_state(self, state: Any) -> None:
        CALLS.append("release_state")
        super().release_state(state)


class RecordingEp(base.FusedElementwiseEp):
    def get_capability(self, graph: onnx.GraphProto, info: GraphSupportInfo,
                       model: Model) -> None:
        CALLS.append("get_capability")
        super().get_capability(graph, info, model)
        single = [n.name for n in graph.node if n.op_type == "Relu" and n.name not in
                  info.claimed()]
        for name in single:  # a lone node claimed on its own (onnxruntime's single node)
            info.add_single_node(name)

    def compile(self, graphs: Sequence[Model], fused_nodes: Sequence[onnx.NodeProto]
                ) -> list[Any]:
        CALLS.append(f"compile:{len(graphs)}")
        return [RecordingCompute(base._Group(g), self.use_numba) for g in graphs]

    def on_run_start(self, run_options: Any) -> None:
        CALLS.append("on_run_start")
        super().on_run_start(run_options)

    def on_run_end(self, run_options: Any, sync_stream: Any) -> None:
        CALLS.append("on_run_end")

    def set_dynamic_options(self, options: Mapping[str, str]) -> None:
        CALLS.append(f"set_dynamic_options:{dict(options)}")


class RecordingFactory(base.FusedElementwiseFactory):
    def get_supported_devices(self, devices: Any) -> list[EpDevice]:
        CALLS.append("get_supported_devices")
        return super().get_supported_devices(devices)

    def create_ep(self, devices: Sequence[EpDevice], session_options: Mapping[str, str]
                  ) -> RecordingEp:
        CALLS.append(f"create_ep:{dict(session_options)}")
        ep = super().create_ep(devices, session_options)
        mine = RecordingEp(ep.name, ep.min_chain, ep.use_numba)
        self.live[-1] = mine
        return mine

    def release_ep(self, ep: Any) -> None:
        CALLS.append("release_ep")
        super().release_ep(ep)

    def create_data_transfer(self) -> base.HostTransfer:
        CALLS.append("create_data_transfer")
        return super().create_data_transfer()

    def is_stream_aware(self) -> bool:
        CALLS.append("is_stream_aware")
        return True

    def create_sync_stream_for_device(self, memory_device: str) -> Any:
        CALLS.append(f"create_sync_stream_for_device:{memory_device}")
        return super().create_sync_stream_for_device(memory_device)


def create_ep_factories(registration_name: str, api: EpApi, max_factories: int
                        ) -> list[RecordingFactory]:
    CALLS.append("create_ep_factories")
    return [RecordingFactory(registration_name, api)][:max_factories]


def release_ep_factory(factory: RecordingFactory) -> None:
    CALLS.append("release_ep_factory")
