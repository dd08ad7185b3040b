"""BatchCompiledModel and BatchInferRequest: a batch-N and a batch-1 model of one device.

Read-only properties tell what was compiled: ``BATCH_SIZE`` (1 when the model runs
unbatched), ``BATCH_UNBATCHED_REASON`` (why, or ``""``), ``EXECUTION_DEVICES``;
``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` is N times the device's own (the requests that keep every
batch full). ``AUTO_BATCH_TIMEOUT`` (ms) may change after compiling, as in OpenVINO.
"""

from __future__ import annotations

from typing import Any

from ... import properties as P
from ...model import Model
from ...properties import Property, PropertySet
from ..base import CompiledModel, Plugin, Stage, SyncInferRequest
from .batcher import Batcher, BatchStage


class BatchCompiledModel(CompiledModel):
    """One model compiled twice on its device: for batch N and as it is."""

    def __init__(self, plugin: Plugin, model: Model, props: PropertySet, device: str,
                 batched: CompiledModel | None, single: CompiledModel, batch: int,
                 reason: str) -> None:
        super().__init__(plugin, model, props)
        self.config = props  # as compiled: what export_model stores
        self.batch = batch
        self.batched = batched
        self.single = single
        self.target = device
        workers = (max(1, int(batched.get_property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS)))
                   if batched is not None else 0)
        self.properties = PropertySet([
            Property(P.AUTO_BATCH_TIMEOUT, "ms a request waits for its batch to fill",
                     validate=P.non_negative_int, default=props.get(P.AUTO_BATCH_TIMEOUT)),
            Property(P.BATCH_SIZE, "the batch runs are coalesced into (1: unbatched)",
                     mutable=False, default=batch if batched is not None else 1),
            Property(P.BATCH_UNBATCHED_REASON, "why the model runs unbatched ('' if it does "
                     "not)", mutable=False, default=reason),
            Property(P.DEVICE_PRIORITIES, "the device, with the batch", mutable=False,
                     default=f"{device}({batch})"),
            Property(P.EXECUTION_DEVICES, "the device the batches run on", mutable=False,
                     default=[device]),
            Property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS, "requests that keep every batch full",
                     mutable=False, default=(batch * workers if batched is not None else int(
                         single.get_property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS)))),
            Property(P.MODEL_NAME, "the model's graph name", mutable=False, default=model.name),
            Property(P.PERF_COUNT, "not collected for batches", mutable=False, default=False),
        ], plugin.name)
        self.batcher = Batcher(f"{plugin.name}:{device}({batch})", batch,
                               lambda: float(self.properties.get(P.AUTO_BATCH_TIMEOUT)),
                               batched, single, workers)

    @property
    def device(self) -> str:
        return f"{self.plugin.name}:{self.get_property(P.DEVICE_PRIORITIES)}"

    def export_model(self) -> bytes:
        """The batch-1 and batch-N models' own exports (:mod:`.export`)."""
        from .export import export_model

        return export_model(self)

    def submodels(self) -> list[CompiledModel]:
        return [m for m in (self.batched, self.single) if m is not None]

    def release(self, timeout: float | None = 5.0) -> None:
        """Start the runs still waiting for a batch, then release both models."""
        self.batcher.close()
        super().release(timeout)

    def statistics(self) -> dict[str, Any]:
        """Batch runs started, runs per batch size (1: run alone) and runs of failed batches
        run again alone."""
        return {"batches": self.batcher.batches, "sizes": dict(self.batcher.sizes),
                "retried": self.batcher.retried}

    def create_sync_request(self) -> BatchInferRequest:
        return BatchInferRequest(self)


class BatchInferRequest(SyncInferRequest):
    """One stage: join a batch (``infer_async``), or run alone (``infer``)."""

    compiled: BatchCompiledModel

    def stages(self) -> list[Stage]:
        batcher = self.compiled.batcher
        return [Stage("batch", batcher, BatchStage(self, batcher))]
