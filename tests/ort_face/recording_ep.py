"""A plugin EP library for the tests: the example EP, recording each hook the session calls
(loaded through ``register_execution_provider_library``, as a user's library is), with its
own allocator, data transfer and sync stream recording their use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from aioinfer.model import Model
from aioinfer.ort.ep.api import EpApi, EpDevice, GraphSupportInfo, NodeComputeContext
from aioinfer.ort.ep.examples import fused_elementwise as base
from aioinfer.runtime.streams import HostStream

CALLS: list[str] = []
FAIL_COMPUTE: list[bool] = [False]  # set to make compute raise (on_run_end must still run)
STREAM_AWARE: list[bool] = [True]  # read when the factory's plugin is made


class RecordingAllocator:
    """The factory's allocator: host arrays, each allocation recorded."""

    memory_device = "host"

    def allocate(self, shape: Any, dtype: Any) -> np.ndarray:
        CALLS.append(f"allocate:{list(shape)}")
        return np.empty(tuple(shape), dtype)


class RecordingTransfer(base.HostTransfer):
    def copy_tensors(self, sources: Sequence[Any], dst_device: str,
                     stream: Any = None) -> list[Any]:
        CALLS.append(f"copy_tensors:{len(sources)}")
        return super().copy_tensors(sources, dst_device, stream)


class RecordingStream(HostStream):
    def create_notification(self) -> Any:
        CALLS.append("create_notification")
        return super().create_notification()


class RecordingCompute(base.FusedCompute):
    def create_state(self, context: NodeComputeContext) -> dict[str, Any]:
        CALLS.append(f"create_state:{context.node_name}")
        return super().create_state(context)

    def compute(self, state: Any, inputs: Sequence[Any]) -> list[Any]:
        CALLS.append("compute")
        if FAIL_COMPUTE[0]:
            raise RuntimeError("recording EP: compute failed on purpose")
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
        return [RecordingCompute(base.group_of(g), self.use_numba, n.name)
                for g, n in zip(graphs, fused_nodes, strict=True)]

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
        return RecordingTransfer()

    def create_allocator(self, memory_device: str) -> RecordingAllocator:
        CALLS.append(f"create_allocator:{memory_device}")
        return RecordingAllocator()

    def is_stream_aware(self) -> bool:
        CALLS.append("is_stream_aware")
        return STREAM_AWARE[0]

    def create_sync_stream_for_device(self, memory_device: str) -> Any:
        CALLS.append(f"create_sync_stream_for_device:{memory_device}")
        return RecordingStream() if memory_device == "host" else None


def create_ep_factories(registration_name: str, api: EpApi, max_factories: int
                        ) -> list[RecordingFactory]:
    CALLS.append("create_ep_factories")
    return [RecordingFactory(registration_name, api)][:max_factories]


def release_ep_factory(factory: RecordingFactory) -> None:
    CALLS.append("release_ep_factory")
