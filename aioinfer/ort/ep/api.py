"""The plugin EP API in Python, mirroring onnxruntime's ``onnxruntime_ep_c_api.h``.

A plugin EP library is a Python module (onnxruntime loads a C library and its ``OrtEpApi``;
aioinfer cannot load those, so the same split is written as Python classes) exporting::

    def create_ep_factories(registration_name: str, api: EpApi, max_factories: int)
        -> list[EpFactory]
    def release_ep_factory(factory: EpFactory) -> None

The split is onnxruntime's:

- :class:`EpFactory` (``OrtEpFactory``): names the EP, says which :class:`HardwareDevice` it
  supports (``get_supported_devices`` -> :class:`EpDevice`), creates EP instances, allocators,
  its data transfer and its sync streams;
- :class:`Ep` (``OrtEp``): ``get_capability`` fills a :class:`GraphSupportInfo` with nodes to
  fuse (or single nodes), ``compile`` turns each fused group into a :class:`NodeComputeInfo`
  (``create_state`` / ``compute`` / ``release_state``);
- data transfer and streams (``OrtDataTransferImpl``, ``OrtSyncStreamImpl``,
  ``OrtSyncNotificationImpl``) ARE aioinfer's :mod:`aioinfer.runtime.streams` protocols, so an
  EP's tensors move between devices in HETERO's transfer stages like any plugin's.

:class:`~aioinfer.ort.ep.plugin.EpPlugin` adapts a factory to aioinfer's Plugin protocol:
``get_capability`` answers ``query_model``, ``compile`` answers ``compile_model``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import onnx

from ...runtime.streams import HOST_MEMORY, DataTransfer, SyncStream

if TYPE_CHECKING:
    from ...model import Model


class OrtHardwareDeviceType(enum.IntEnum):
    CPU = 0
    GPU = 1
    NPU = 2


class OrtEpDataLayout(enum.IntEnum):
    NCHW = 0
    NHWC = 1


@dataclass(frozen=True)
class HardwareDevice:
    """A device of this machine (``OrtHardwareDevice``)."""

    type: OrtHardwareDeviceType
    vendor: str
    vendor_id: int
    device_id: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    memory_device: str = HOST_MEMORY


@dataclass(frozen=True)
class EpDevice:
    """An (EP, hardware device) pair that can run a model or part of one (``OrtEpDevice``)."""

    ep_name: str
    ep_vendor: str
    ep_metadata: Mapping[str, str]
    ep_options: Mapping[str, str]
    device: HardwareDevice
    factory: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class NodeFusionOptions:
    """``OrtNodeFusionOptions``: ``drop_constant_initializers`` lets the EP keep the fused
    nodes' initializers itself instead of getting them as inputs."""

    drop_constant_initializers: bool = False


@dataclass
class NodeGroup:
    """One group an EP claimed: nodes to fuse into one compiled function, or a single node."""

    nodes: list[str]
    fuse: bool
    options: NodeFusionOptions = field(default_factory=NodeFusionOptions)


class GraphSupportInfo:
    """What an EP's ``get_capability`` fills (``OrtEpGraphSupportInfo``)."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self._names = {n.name for n in graph.node}
        self.groups: list[NodeGroup] = []

    def _check(self, nodes: Sequence[onnx.NodeProto | str]) -> list[str]:
        names = [n if isinstance(n, str) else n.name for n in nodes]
        taken = {n for g in self.groups for n in g.nodes}
        for name in names:
            if name not in self._names:
                raise ValueError(f"get_capability: the graph has no node {name!r}")
            if name in taken:
                raise ValueError(f"get_capability: node {name!r} is claimed twice")
        return names

    def add_nodes_to_fuse(self, nodes: Sequence[onnx.NodeProto | str],
                          options: NodeFusionOptions | None = None) -> None:
        """``EpGraphSupportInfo_AddNodesToFuse``: compile these nodes as one function."""
        names = self._check(nodes)
        if names:
            self.groups.append(NodeGroup(names, True, options or NodeFusionOptions()))

    def add_single_node(self, node: onnx.NodeProto | str) -> None:
        """``EpGraphSupportInfo_AddSingleNode``: run this node as its own kernel."""
        self.groups.append(NodeGroup(self._check([node]), False))

    def claimed(self) -> set[str]:
        return {n for g in self.groups for n in g.nodes}


class Allocator(Protocol):
    """``OrtAllocator``: memory on one device. ``allocate`` returns an array (or the device's
    tensor) of ``shape`` and ``dtype``."""

    memory_device: str

    def allocate(self, shape: Sequence[int], dtype: Any) -> Any: ...


class HostAllocator:
    """The host's allocator (``np.empty``): what a compute context gets when the factory's
    ``create_allocator`` returns ``None``."""

    memory_device = HOST_MEMORY

    def allocate(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        return np.empty(tuple(shape), dtype)


HOST_ALLOCATOR = HostAllocator()


@dataclass
class NodeComputeContext:
    """``OrtNodeComputeContext``: the fused node's name, and the allocator of the EP's
    memory device (the factory's ``create_allocator``, else :data:`HOST_ALLOCATOR`) for the
    outputs ``compute`` makes."""

    node_name: str
    allocator: Allocator = field(default_factory=HostAllocator)


class NodeComputeInfo(Protocol):
    """``OrtNodeComputeInfo``: how to run one compiled group."""

    def create_state(self, context: NodeComputeContext) -> Any: ...

    def compute(self, state: Any, inputs: Sequence[Any]) -> list[Any]:
        """The group's outputs (in the fused node's output order) from its inputs."""

    def release_state(self, state: Any) -> None: ...


class Ep:
    """Base of an EP instance (``OrtEp``). Override ``get_capability`` and ``compile``."""

    name: str = ""

    def get_capability(self, graph: onnx.GraphProto, info: GraphSupportInfo,
                       model: Model) -> None:
        """Add the nodes this EP runs to ``info``."""
        raise NotImplementedError

    def compile(self, graphs: Sequence[Model], fused_nodes: Sequence[onnx.NodeProto]
                ) -> list[NodeComputeInfo]:
        """One :class:`NodeComputeInfo` per fused node; ``graphs[k]`` is the sub-model of
        ``fused_nodes[k]`` (its inputs and outputs are the fused node's)."""
        raise NotImplementedError

    def get_preferred_data_layout(self) -> OrtEpDataLayout:
        """The layout the EP's layout-sensitive kernels want (see
        :mod:`aioinfer.ort.ep.layout`: with NHWC, the adapter gives the EP those nodes in
        domain ``com.ms.internal.nhwc`` and transposes their data around the fused node)."""
        return OrtEpDataLayout.NCHW

    def should_convert_data_layout_for_op(self, domain: str, op_type: str,
                                          target: OrtEpDataLayout) -> bool | None:
        """Whether a layout-sensitive node the EP claimed is converted to ``target``:
        ``None`` lets the adapter decide (it converts every layout-sensitive op, as
        onnxruntime's layout transformer does), ``False`` keeps the node in NCHW."""
        return None

    def set_dynamic_options(self, options: Mapping[str, str]) -> None:
        """Options changed after the session was made (``set_ep_dynamic_options``)."""

    def on_run_start(self, run_options: Any) -> None:
        """Called before each run of a model this EP compiled."""

    def on_run_end(self, run_options: Any, sync_stream: SyncStream | None) -> None:
        """Called after each run (successful or not)."""

    def is_concurrent_run_supported(self) -> bool:
        return True


class EpFactory:
    """Base of an EP factory (``OrtEpFactory``)."""

    def __init__(self, registration_name: str) -> None:
        self.registration_name = registration_name

    def get_name(self) -> str:
        return self.registration_name

    def get_vendor(self) -> str:
        return ""

    def get_vendor_id(self) -> int:
        return 0

    def get_version(self) -> str:
        return "0"

    def get_supported_devices(self, devices: Sequence[HardwareDevice]) -> list[EpDevice]:
        """The :class:`EpDevice` of each hardware device this EP supports."""
        raise NotImplementedError

    def create_ep(self, devices: Sequence[EpDevice], session_options: Mapping[str, str]) -> Ep:
        raise NotImplementedError

    def release_ep(self, ep: Ep) -> None:
        """Free an EP made by :meth:`create_ep`."""

    def create_allocator(self, memory_device: str) -> Allocator | None:
        """An allocator for ``memory_device`` (``None``: the host's, numpy). The adapter asks
        once per compiled model and hands it to every fused node's ``create_state`` in the
        :class:`NodeComputeContext`."""
        return None

    def create_data_transfer(self) -> DataTransfer | None:
        """Copies between this EP's memory and others (``None``: host memory only)."""
        return None

    def is_stream_aware(self) -> bool:
        return False

    def create_sync_stream_for_device(self, memory_device: str) -> SyncStream | None:
        return None


class EpApi:
    """What a library's ``create_ep_factories`` gets (the ``OrtApiBase``): helpers to make
    :class:`EpDevice` objects and the API version."""

    version = "1"

    def create_ep_device(self, factory: EpFactory, device: HardwareDevice,
                         ep_metadata: Mapping[str, str] | None = None,
                         ep_options: Mapping[str, str] | None = None) -> EpDevice:
        return EpDevice(factory.get_name(), factory.get_vendor(), dict(ep_metadata or {}),
                        dict(ep_options or {}), device, factory)
