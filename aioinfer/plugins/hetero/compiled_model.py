"""HeteroCompiledModel: the compiled subgraphs of one model and how values cross between them.

Inspect a compiled HETERO model with ``EXECUTION_DEVICES``, ``HETERO_NUMBER_OF_SUBMODELS``,
:attr:`HeteroCompiledModel.partition` (networkx graphs of the cut) and :meth:`to_dot`.
``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` is the sum over the devices of the most any of its
subgraphs wants: a pipeline keeps every device busy only with that many requests in flight
(OpenVINO takes the maximum over subgraphs, which leaves a two-device pipeline half idle).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ... import properties as P
from ...errors import SubgraphCompileError
from ...graph.partition import Partition
from ...model import Model
from ...properties import Property, PropertySet
from ..base import CompiledModel
from .infer_request import HeteroInferRequest

if TYPE_CHECKING:
    from .plugin import HeteroPlugin

__all__ = ["HeteroCompiledModel", "SubgraphCompileError"]


class HeteroCompiledModel(CompiledModel):
    """One model split into subgraphs, each compiled by its device."""

    def __init__(self, plugin: HeteroPlugin, model: Model, props: PropertySet,
                 partition: Partition, compiled: list[CompiledModel]) -> None:
        super().__init__(plugin, model, props)
        self.config = props  # as compiled: what export_model stores
        self.partition = partition
        self.compiled = compiled
        devices = list(dict.fromkeys(sub.device for sub in partition.subgraphs))
        fixed = {k: v for k, v in props.as_dict().items() if k != P.PERF_COUNT}
        self.properties = PropertySet([
            Property(P.PERF_COUNT, "per-subgraph, per-transfer and per-node profiling",
                     validate=P.boolean, default=props.get(P.PERF_COUNT)),
            *[Property(key, "as compiled", mutable=False, default=value)
              for key, value in fixed.items()],
            Property(P.EXECUTION_DEVICES, "devices the subgraphs run on", mutable=False,
                     default=devices),
            Property(P.HETERO_NUMBER_OF_SUBMODELS, "subgraphs the model was cut into",
                     mutable=False, default=len(compiled)),
            Property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS, "requests that keep every device "
                     "busy", mutable=False, getter=self._optimal_requests),
            Property(P.MODEL_NAME, "the model's graph name", mutable=False,
                     default=model.name),
        ], plugin.name)

    def _optimal_requests(self) -> int:
        per_device: dict[str, int] = {}
        for sub, compiled in zip(self.partition.subgraphs, self.compiled, strict=True):
            wanted = int(compiled.get_property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS))
            per_device[sub.device] = max(per_device.get(sub.device, 1), wanted)
        return sum(per_device.values())

    @property
    def device(self) -> str:
        return f"{self.plugin.name}:{','.join(self.get_property(P.EXECUTION_DEVICES))}"

    def set_property(self, properties: Any) -> None:
        self.properties.set(properties)
        if P.PERF_COUNT in properties:
            for compiled in self.compiled:
                if P.PERF_COUNT in compiled.get_property(P.SUPPORTED_PROPERTIES):
                    compiled.set_property({P.PERF_COUNT: properties[P.PERF_COUNT]})

    def export_model(self) -> bytes:
        """The cut and each subgraph's own export (:mod:`.export`); ``core.import_model``
        on ``HETERO`` skips the devices' queries and the subgraphs' compiles."""
        from .export import export_model

        return export_model(self)

    def submodels(self) -> list[CompiledModel]:
        return list(self.compiled)

    def create_sync_request(self) -> HeteroInferRequest:
        return HeteroInferRequest(self)

    def to_dot(self) -> str:
        """The partition as Graphviz DOT text: nodes coloured by device, one cluster per
        subgraph, cut edges labelled with the values that cross them."""
        return self.partition.to_dot()
