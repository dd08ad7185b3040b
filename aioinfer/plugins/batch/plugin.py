"""BatchPlugin: ``BATCH:DEV(N)`` coalesces concurrent single-sample requests on DEV.

The model is compiled twice on the device: as it is (batch 1) and with dim 0 of every input
set to N (:meth:`~aioinfer.model.Model.reshape`). Whether that is safe is decided at compile
time (:func:`batchability`), and a model that fails a check runs unbatched, with the reason
in ``BATCH_UNBATCHED_REASON``; it never runs batched with wrong results:

1. every input has a batch axis: rank >= 1 and dim 0 is 1 or dynamic;
2. the batched model's shapes infer, and every output keeps the batch (dim 0 is N or
   dynamic): a ``Reshape`` to a constant shape, for one, fixes the batch and is named;
3. a probe: N different samples run as one batch give the rows each sample gives alone
   (a model that mixes samples across dim 0, e.g. a reduction or a softmax over it, fails).

Without ``(N)`` the batch is the device's ``OPTIMAL_BATCH_SIZE`` if it has one, else 4.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import properties as P
from ...devices import parse_device
from ...errors import AioInferError, DeviceNotFoundError, InputError
from ...model import Model
from ...properties import Property, PropertySet
from ..base import CompiledModel, Plugin
from ..hetero.plugin import device_properties
from .compiled_model import BatchCompiledModel

DEFAULT_BATCH = 4


def _specs() -> list[Property]:
    return [
        Property(P.FULL_DEVICE_NAME, "human-readable device name", mutable=False,
                 default="BATCH (concurrent requests coalesced into batches)"),
        Property(P.DEVICE_PRIORITIES, "the device and batch, e.g. NUMPY(8)", default="",
                 validate=lambda v: ",".join(str(t) for t in parse_device(f"BATCH:{v}")
                                             .targets) if str(v) else ""),
        Property(P.AUTO_BATCH_TIMEOUT, "ms a request waits for its batch to fill before a "
                 "partial batch runs", validate=P.non_negative_int, default=1000),
        Property(P.DEVICE_PROPERTIES, "{device: {property: value}} for the device",
                 validate=device_properties, default={}),
        Property(P.PERFORMANCE_HINT, "passed on to the device", validate=P.performance_mode,
                 default=P.PerformanceMode.LATENCY),
    ]


def batchability(model: Model, batch: int) -> tuple[Model | None, str]:
    """The model reshaped to ``batch``, or ``None`` and why it cannot be (checks 1-2)."""
    shapes: dict[int | str, list[Any]] = {}
    for port in model.inputs:
        if port.shape is None or not port.shape:
            return None, f"input {port.name!r} has no batch axis (rank 0 or unknown)"
        first = port.shape[0]
        if isinstance(first, int) and first != 1:
            return None, f"input {port.name!r} has batch {first} (a batch axis must be 1 or " \
                         "dynamic)"
        shapes[port.name] = [batch, *[d if d is not None else -1 for d in port.shape[1:]]]
    batched = model.clone()
    try:
        batched.reshape(shapes)
    except InputError as exc:
        return None, f"the model does not take batch {batch}: {exc}"
    for port in batched.outputs:
        first = port.shape[0] if port.shape else None
        if port.shape is not None and (not port.shape or (isinstance(first, int)
                                                           and first != batch)):
            where = _first_fixed(batched, batch)
            return None, (f"output {port.name!r} does not carry the batch axis (dim 0 is "
                          f"{first if port.shape else 'absent'} with inputs of batch {batch})"
                          f"{where}")
    return batched, ""


def _first_fixed(batched: Model, batch: int) -> str:
    """``, fixed at node 'x' (Reshape)``: the first node whose inputs carry the batch and whose
    outputs do not."""
    def first_dim(name: str) -> Any:
        typ = batched.value_type(name)
        if typ is None or not typ.HasField("tensor_type"):
            return None
        dims = typ.tensor_type.shape.dim
        return dims[0].dim_value if dims and dims[0].HasField("dim_value") else None

    for node in batched.proto.graph.node:
        if any(first_dim(i) == batch for i in node.input if i) and any(
                first_dim(o) not in (batch, None) for o in node.output if o):
            return f", fixed at node {node.name!r} ({node.op_type})"
    return ""


def probe(single: CompiledModel, batched: CompiledModel, model: Model, batch: int) -> str:
    """Run ``batch`` different samples as one batch and alone (check 3): ``""`` if every row
    matches, else why not."""
    from ... import models

    recorded = models.example_shapes(model.proto)
    shapes: dict[str, list[int]] = {}
    for port in model.inputs:
        dims: list[Any] = list(recorded.get(port.name) or port.shape or ())
        shapes[port.name] = [1, *[d if isinstance(d, int) else 1 for d in dims[1:]]]
    try:
        samples = [models.example_inputs(model.proto, seed=k, shapes=shapes)
                   for k in range(batch)]
        alone = [single.create_infer_request().infer(s) for s in samples]
        joined = {name: np.concatenate([s[name] for s in samples]) for name in shapes}
        together = batched.create_infer_request().infer(joined)
    except (AioInferError, ValueError) as exc:
        return f"the batch probe could not run: {exc}"
    for port in model.outputs:
        rows = np.asarray(together[port.name])
        for k, result in enumerate(alone):
            want = np.asarray(result[port.name])
            got = rows[k:k + 1]
            if got.shape != want.shape:
                return (f"output {port.name!r}: row {k} of a batch has shape {got.shape}, "
                        f"the sample alone {want.shape}")
            if want.dtype.kind in "fc":
                scale = float(np.max(np.abs(want))) if want.size else 0.0
                ok = np.allclose(got, want, rtol=1e-4, atol=1e-5 * (1.0 + scale),
                                 equal_nan=True)
            else:
                ok = np.array_equal(got, want)
            if not ok:
                return (f"output {port.name!r}: row {k} of a batch differs from the sample "
                        "run alone (the model mixes samples across dim 0)")
    return ""


class BatchPlugin(Plugin):
    """The virtual device that runs concurrent requests as batches."""

    virtual = True
    targets_property = P.DEVICE_PRIORITIES

    def __init__(self, name: str = "BATCH") -> None:
        self.name = name
        self.properties = PropertySet(_specs(), name)

    def _config(self, config: Mapping[str, Any]) -> PropertySet:
        settable = {k: self.properties.get(k)
                    for k, rw in self.properties.supported().items() if rw == "RW"}
        props = PropertySet(_specs(), self.name, **settable)
        props.set(config)
        return props

    def _target(self, props: PropertySet) -> tuple[str, int | None, dict[str, Any]]:
        text = props.get(P.DEVICE_PRIORITIES)
        if not text:
            raise DeviceNotFoundError(f"{self.name} needs a device: compile for "
                                      f"'{self.name}:NUMPY(8)' or set {P.DEVICE_PRIORITIES}",
                                      device=self.name)
        parsed = parse_device(f"BATCH:{text}").targets
        if len(parsed) != 1:
            raise DeviceNotFoundError(f"{self.name} batches on one device, got {text!r}",
                                      device=self.name)
        device = parsed[0].base
        core = self.get_core()
        if core.plugin(device).virtual:
            raise DeviceNotFoundError(f"{self.name}: {device} is a virtual device; {self.name} "
                                      "batches on a real one", device=device)
        supported = core.get_property(device, P.SUPPORTED_PROPERTIES)
        config: dict[str, Any] = {}
        if P.PERFORMANCE_HINT in supported:
            config[P.PERFORMANCE_HINT] = props.get(P.PERFORMANCE_HINT)
        config.update(props.get(P.DEVICE_PROPERTIES).get(device, {}))
        return device, parsed[0].count, config

    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        device, _, device_config = self._target(self._config(config))
        return {node: self.name for node in
                self.get_core().query_model(model, device, device_config)}

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> BatchCompiledModel:
        props = self._config(config)
        device, count, device_config = self._target(props)
        core = self.get_core()
        batch = count or self._optimal_batch(device)
        single = core.compile_model(model, device, device_config)
        batched_model, reason = batchability(model, batch) if batch > 1 else (
            None, "the batch size is 1")
        batched: CompiledModel | None = None
        if batched_model is not None:
            try:
                batched = core.compile_model(batched_model, device, device_config)
                reason = probe(single, batched, model, batch)
            except AioInferError as exc:
                reason = f"{device} cannot compile the batch-{batch} model: {exc}"
            if reason and batched is not None:
                batched.release()
                batched = None
        return BatchCompiledModel(self, model, props, device, batched, single, batch, reason)

    def import_model(self, blob: bytes, config: Mapping[str, Any]) -> BatchCompiledModel:
        """A BATCH model from its ``export_model`` bytes (:mod:`.export`)."""
        from .export import import_model

        return import_model(self, blob, config)

    def _optimal_batch(self, device: str) -> int:
        core = self.get_core()
        if P.OPTIMAL_BATCH_SIZE in core.get_property(device, P.SUPPORTED_PROPERTIES):
            return max(1, int(core.get_property(device, P.OPTIMAL_BATCH_SIZE)))
        return DEFAULT_BATCH
