"""HeteroInferRequest: the subgraphs of one request as stages, with explicit transfers.

For subgraphs ``S0..Sn`` (a topological order) one inference is the stage graph

    to:Si (host -> Si's device)      model inputs Si reads       StreamExecutor of Si's device
    Sp->Si                           values Si reads from Sp     StreamExecutor of Si's device
    subgraph:Si:DEV                  Si's own infer request      RequestExecutor
    outputs (-> host)                the model's outputs         StreamExecutor of the host

Each subgraph stage waits only for the transfers into it, so subgraphs that do not depend on
each other run at the same time, and with several requests in flight request i's subgraph on
B overlaps request i+1's on A. The data moves through named slots: the inputs and outputs of
the sub-requests and of this request; a transfer reads from the producer's output slots and
writes into the consumer's input slots, on the consumer's sync stream, after the producer's
notification. Between host devices the transfer hands the array over (OpenVINO HETERO shares
one tensor between the two sub-requests to the same effect).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import NotSupportedError
from ...runtime.streams import (
    HOST_MEMORY,
    HOST_STREAM,
    HOST_TRANSFER,
    StreamExecutor,
    SyncStream,
    Transfer,
)
from ...runtime.subrequest import RequestExecutor
from ..base import Stage, SyncInferRequest

if TYPE_CHECKING:
    from ...runtime.request import InferRequest
    from .compiled_model import HeteroCompiledModel


def _noop() -> None:
    pass


class HeteroInferRequest(SyncInferRequest):
    """One request of every subgraph, driven as the stages of this one."""

    compiled: HeteroCompiledModel

    def __init__(self, compiled: HeteroCompiledModel) -> None:
        super().__init__(compiled)
        self.subrequests: list[InferRequest] = [c.create_infer_request() for c in compiled.compiled]

    def entry_executor(self) -> Any:
        """The first subgraph's device workers: the input check runs where that subgraph's
        sub-request then starts, instead of on a HOST thread between the loop and them."""
        executor = getattr(self.compiled.compiled[0], "executor", None)
        return executor if getattr(executor, "lane", None) is not None else None

    def stages(self) -> list[Stage]:
        cut = self.compiled.partition
        # The subgraphs' own plugins (a compiled model keeps its plugin; the Core may be gone),
        # and one sync stream per subgraph: transfers into it run on it, its notification
        # is made on it.
        plugins = [compiled.plugin for compiled in self.compiled.compiled]
        streams = [plugin.sync_stream() for plugin in plugins]
        model_inputs = {port.name: port.index for port in self.compiled.inputs}
        stages: list[Stage] = []
        outgoing: list[list[Transfer]] = [[] for _ in cut.subgraphs]
        for sub, request, plugin in zip(cut.subgraphs, self.subrequests, plugins, strict=True):
            slots = {port.name: port.index for port in request.inputs}
            stream = streams[sub.index]
            on_stream = StreamExecutor(f"{plugin.name} stream", stream)
            after = []
            host_values = [v for v in sub.inputs if v in model_inputs]
            if host_values:
                name = f"to:{sub.index}"
                work = self._transfer(self._reader_of_inputs(host_values), request,
                                      [slots[v] for v in host_values], None, plugin, stream)
                stages.append(Stage(name, on_stream, work, after=()))
                after.append(name)
            by_producer: dict[int, list[str]] = defaultdict(list)
            for edge in cut.boundaries:
                if edge.consumer == sub.index:
                    by_producer[edge.producer].append(edge.value)
            for producer, values in sorted(by_producer.items()):
                work = self._transfer(self._reader_of(self.subrequests[producer], values),
                                      request, [slots[v] for v in values], plugins[producer],
                                      plugin, stream)
                outgoing[producer].append(work)
                name = f"{producer}->{sub.index}"
                stages.append(Stage(name, on_stream, work, after=(f"subgraph:{producer}",)))
                after.append(name)
            stages.append(Stage(f"subgraph:{sub.index}",
                                RequestExecutor(f"{sub.device} subgraph {sub.index}", request,
                                                _notifier(stream, outgoing[sub.index])),
                                _noop, after=tuple(after)))
        stages.append(self._output_stage(cut, model_inputs))
        return stages

    # -- building blocks -------------------------------------------------------------------------
    def _transfer(self, read: Callable[[], Sequence[Any]], request: InferRequest,
                  indices: list[int], producer: Any, consumer: Any, stream: SyncStream
                  ) -> Transfer:
        """Values ``read`` from ``producer``'s memory (``None``: the host) into ``request``'s
        input slots ``indices``, on the consumer's ``stream``."""
        sync = request._sync

        def write(values: Sequence[Any]) -> None:
            inputs = sync.inputs
            for index, value in zip(indices, values, strict=True):
                inputs[index] = value

        return Transfer(read, write, _data_transfer(producer, consumer), stream,
                        consumer.memory_device)

    def _reader_of_inputs(self, names: list[str]) -> Callable[[], list[Any]]:
        index = {port.name: port.index for port in self.compiled.inputs}
        positions = [index[n] for n in names]
        return lambda: [self.inputs[k] for k in positions]

    @staticmethod
    def _reader_of(request: InferRequest, names: list[str]) -> Callable[[], list[Any]]:
        index = {port.name: port.index for port in request.outputs}
        positions = [index[n] for n in names]
        sync = request._sync
        return lambda: [sync.outputs[k] for k in positions]

    def _output_stage(self, cut: Any, model_inputs: dict[str, int]) -> Stage:
        where: list[tuple[Any, str, int]] = []  # (owner, "inputs"/"outputs", position)
        producers = set()
        for port in self.compiled.outputs:
            source = cut.output_source(port.name)
            if source is None:
                if port.name not in model_inputs:
                    raise NotSupportedError(
                        f"HETERO: model output {port.name!r} is neither computed nor a model "
                        "input", device="HETERO")
                where.append((self, "inputs", model_inputs[port.name]))
                continue
            request = self.subrequests[source]
            position = next(p.index for p in request.outputs if p.name == port.name)
            where.append((request._sync, "outputs", position))
            producers.add(source)

        def collect() -> None:
            # read through the owners: a request's output list is a new one after each run
            values = [getattr(owner, slots)[k] for owner, slots, k in where]
            self.outputs = HOST_TRANSFER.copy_tensors(values, HOST_MEMORY, HOST_STREAM)

        return Stage("outputs", StreamExecutor("host stream", HOST_STREAM), collect,
                     after=tuple(f"subgraph:{k}" for k in sorted(producers)))

    # -- profiling -------------------------------------------------------------------------------
    def profiling_info(self) -> list[dict[str, Any]]:
        """Each subgraph's node and stage entries (stage names prefixed ``subgraph:i/``)."""
        entries = []
        for k, request in enumerate(self.subrequests):
            for entry in request.profiling_info:
                if entry.get("node_type") == "Stage":
                    entry = {**entry, "node_name": f"subgraph:{k}/{entry['node_name']}"}
                entries.append(entry)
        return entries


def _notifier(stream: SyncStream, transfers: list[Transfer]) -> Callable[[], None]:
    """After a subgraph's run: one notification on its stream, for every transfer out."""
    def activate() -> None:
        notification = stream.create_notification()
        notification.activate()
        for work in transfers:
            work.source = notification

    return activate


def _data_transfer(producer: Any, consumer: Any) -> Any:
    """The consumer's data transfer if it can copy from the producer's memory, else the
    producer's (ONNX Runtime asks each EP's OrtDataTransferImpl the same way)."""
    src = HOST_MEMORY if producer is None else producer.memory_device
    candidates = [consumer.data_transfer()]
    if producer is not None:
        candidates.append(producer.data_transfer())
    for transfer in (*candidates, HOST_TRANSFER):
        if transfer.can_copy(src, consumer.memory_device):
            return transfer
    raise NotSupportedError(
        f"HETERO: no data transfer from {src} memory to {consumer.name}'s "
        f"{consumer.memory_device} memory", device=consumer.name)
