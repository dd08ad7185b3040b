"""The plugin protocol: Plugin -> CompiledModel -> SyncInferRequest (exposing its stages).

A device is one :class:`Plugin`. ``compile_model`` returns a :class:`CompiledModel`, whose
``create_sync_request`` makes a device-level :class:`SyncInferRequest`. A sync request does not
run itself: it exposes its work as a list of :class:`Stage` (name, executor, callable, and the
stages it waits for: a small DAG, a chain by default; see :mod:`aioinfer.runtime.stages`). The
public :class:`~aioinfer.runtime.request.InferRequest` runs those stages inline for ``infer()``
and awaits them on their executors for ``infer_async()``, so a plugin author writes only
synchronous code. See ``aioinfer/plugins/template`` for a worked example of a device and
``aioinfer/plugins/hetero`` for a plugin built from other plugins (through ``get_core()``).
"""

from __future__ import annotations

import queue
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError
from ..model import Model, Port
from ..properties import PropertySet
from ..runtime.stages import Stage
from ..runtime.streams import HOST_MEMORY, HOST_STREAM, HOST_TRANSFER, DataTransfer, SyncStream

__all__ = ["CompiledModel", "Plugin", "Stage", "SyncInferRequest"]

if TYPE_CHECKING:
    from ..core import CoreView
    from ..runtime.executors import Executor, ExecutorRegistry
    from ..runtime.request import InferRequest
    from ..runtime.results import Results


class SyncInferRequest(ABC):
    """A device-level request: owns the request's buffers and exposes its stages.

    Before the stages run, ``inputs`` holds one checked value per model input (in model input
    order); after the last stage, ``outputs`` holds one value per model output.
    """

    def __init__(self, compiled: CompiledModel) -> None:
        self.compiled = compiled
        self.inputs: list[Any] = [None] * len(compiled.inputs)
        self.outputs: list[Any] = [None] * len(compiled.outputs)

    @abstractmethod
    def stages(self) -> list[Stage]:
        """The pipeline of this request, in order. Called once per request."""

    def entry_executor(self) -> Any:
        """Where a run checks its inputs when its first stage's executor has no workers of
        its own (a transfer, a sub-request): ``None`` means HOST. A composite request names
        the executor its first work runs on, so that the check costs no extra hand-over."""
        return None

    def profiling_info(self) -> list[dict[str, Any]]:
        """Per-node / per-stage timings of the last run (empty unless PERF_COUNT is on)."""
        return []


class CompiledModel(ABC):
    """A model compiled for one device."""

    def __init__(
        self, plugin: Plugin, model: Model, properties: PropertySet
    ) -> None:
        self.plugin = plugin
        self.model = model
        self.properties = properties
        self._inputs = model.inputs
        self._outputs = model.outputs
        self._pool: queue.SimpleQueue[InferRequest] = queue.SimpleQueue()
        self._released = False
        self._leases: list[tuple[Executor, Callable[[], Any]]] = []

    def lease_executor(self, workers: int) -> Executor:
        """The plugin's shared executor for ``workers`` streams, held until :meth:`release`
        (see :class:`~aioinfer.runtime.executors.ExecutorRegistry`)."""
        executor, give_back = self.plugin.executors.acquire(self, workers)
        self._leases.append((executor, give_back))
        return executor

    @property
    def inputs(self) -> list[Port]:
        return self._inputs

    @property
    def outputs(self) -> list[Port]:
        return self._outputs

    def input(self, key: int | str | None = None) -> Port:
        from ..model import _pick

        return _pick(self._inputs, key, "input")

    def output(self, key: int | str | None = None) -> Port:
        from ..model import _pick

        return _pick(self._outputs, key, "output")

    @property
    def device(self) -> str:
        return self.plugin.name

    @abstractmethod
    def create_sync_request(self) -> SyncInferRequest:
        """A new device-level request (plugin authors implement this)."""

    def create_infer_request(self) -> InferRequest:
        """A new :class:`~aioinfer.runtime.request.InferRequest` with its own buffers."""
        from ..runtime.request import InferRequest

        return InferRequest(self, self.create_sync_request())

    def __call__(self, inputs: Any = None) -> Results:
        """Infer once. Safe from several threads at once: each call takes a request from a
        pool (creating one when all are busy) and returns it afterwards."""
        try:
            request = self._pool.get_nowait()
        except queue.Empty:
            request = self.create_infer_request()
        try:
            return request.infer(inputs)
        finally:
            self._pool.put(request)

    async def infer_async(self, inputs: Any = None) -> Results:
        """Infer once without blocking the event loop (asyncio, uvloop or trio).

        Takes a request from the same pool as ``__call__``, so any number of tasks may await
        this at once; a cancelled call returns its request to the pool, reusable.
        """
        try:
            request = self._pool.get_nowait()
        except queue.Empty:
            request = self.create_infer_request()
        try:
            return await request.infer_async(inputs)
        finally:
            self._pool.put(request)

    def stream(
        self, source: AsyncIterable[Any], *, ordered: bool = True, max_in_flight: int = 0
    ) -> AsyncGenerator[Results, None]:
        """An async generator of results for each input of the async iterable ``source``.

        At most ``max_in_flight`` inferences run at once (0: OPTIMAL_NUMBER_OF_INFER_REQUESTS);
        the source is pulled only when a request is free (backpressure). Results come in input
        order unless ``ordered=False``. See :func:`aioinfer.runtime.streaming.stream`.
        """
        from ..runtime.streaming import stream

        return stream(self, source, ordered=ordered, max_in_flight=max_in_flight)

    # -- lifetime --------------------------------------------------------------------------------
    def executors(self) -> list[Executor]:
        """The executors this compiled model owns outright, whose threads :meth:`release`
        stops: every :class:`~aioinfer.runtime.executors.Executor` held in an attribute that
        is not a shared lease (:meth:`lease_executor`) nor ``HOST``/``WAIT``."""
        from ..runtime.executors import HOST, WAIT, Executor

        leased = [executor for executor, _ in self._leases]
        return [value for value in vars(self).values() if isinstance(value, Executor)
                and value is not HOST and value is not WAIT
                and not any(value is e for e in leased)]

    def submodels(self) -> list[CompiledModel]:
        """The compiled models this one is built from (HETERO's subgraphs); :meth:`release`
        releases them too."""
        return []

    def release(self, timeout: float | None = 5.0) -> None:
        """Stop this model's worker threads now and join them (up to ``timeout`` seconds).

        Runs already started finish first (their awaiting callers get their results); after
        that every request of this model refuses new inferences with
        :class:`~aioinfer.errors.RequestError`. Shared executors are given back (the last
        model holding one stops its threads), and the models this one composes are released
        too. Idempotent. ``with compiled:`` calls it on exit. Without it the threads exit on
        their own when idle or when the model is collected.
        """
        self._released = True
        for executor in self.executors():
            executor.close(timeout)
        for _, give_back in self._leases:
            give_back()
        for sub in self.submodels():
            sub.release(timeout)
        while True:  # drop the pooled requests (and their buffers)
            try:
                self._pool.get_nowait()
            except queue.Empty:
                break

    @property
    def released(self) -> bool:
        """Whether :meth:`release` has been called."""
        return self._released

    def __enter__(self) -> CompiledModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def get_property(self, key: str) -> Any:
        return self.properties.get(key)

    def set_property(self, properties: Mapping[str, Any]) -> None:
        self.properties.set(properties)

    def export_model(self) -> bytes:
        raise NotSupportedError(f"{self.device}: export_model is not supported",
                                device=self.device)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model.name!r} on {self.device}>"


class Plugin(ABC):
    """One device. Subclasses set ``name`` and implement ``compile_model`` and
    ``query_model``; ``properties`` holds the device's settable and read-only properties."""

    name: str = ""
    properties: PropertySet
    virtual: bool = False
    """A device built from other devices (HETERO, MULTI...): not in ``available_devices``."""
    targets_property: str | None = None
    """The property a virtual device's list (``HETERO:A,B``) is passed in."""
    memory_device: str = HOST_MEMORY
    """Where this device's tensors live (``"host"`` for every host plugin)."""
    runs_operations: bool = False
    """Whether :meth:`add_operations` installs custom operations (:class:`aioinfer.Op`); for
    a device without it, the Core hands models the ops' decompositions (``Op.function()``)."""

    def attach_core(self, core: CoreView) -> None:
        """Called by the :class:`~aioinfer.Core` that loads this plugin."""
        self._core = core

    def get_core(self) -> CoreView:
        """The Core that loaded this plugin (OpenVINO's ``get_core()``)."""
        core = getattr(self, "_core", None)
        if core is None:
            raise NotSupportedError(f"{self.name}: the plugin is not attached to a Core",
                                    device=self.name)
        return core

    @property
    def executors(self) -> ExecutorRegistry:
        """This plugin's executors, shared per stream configuration by its compiled models."""
        registry = self.__dict__.get("_executors")
        if registry is None:
            from ..runtime.executors import ExecutorRegistry

            registry = self.__dict__.setdefault("_executors", ExecutorRegistry(self.name))
        return registry

    def device_ids(self) -> tuple[str, ...]:
        """Ids of this plugin's devices (``GPU.0``, ``GPU.1``); empty: one device, no ids."""
        return ()

    def hidden_devices(self) -> tuple[str, ...]:
        """Plugins this one stands for and hides from ``available_devices`` (the ``CPU``
        proxy hides NUMPY and TEMPLATE); they stay addressable by their own names."""
        return ()

    def sync_stream(self) -> SyncStream:
        """A sync stream on this device (host plugins: the host stream)."""
        return HOST_STREAM

    def data_transfer(self) -> DataTransfer:
        """Copies between this device's memory and others (host plugins: a hand-over)."""
        return HOST_TRANSFER

    def get_property(self, key: str) -> Any:
        return self.properties.get(key)

    def set_property(self, properties: Mapping[str, Any]) -> None:
        self.properties.set(properties)

    @abstractmethod
    def compile_model(self, model: Model, config: Mapping[str, Any]) -> CompiledModel:
        """Compile ``model`` with ``config`` (property overrides for this model)."""

    @abstractmethod
    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        """Map each node name this device can run to its device name."""

    def import_model(self, blob: bytes, config: Mapping[str, Any]) -> CompiledModel:
        raise NotSupportedError(f"{self.name}: import_model is not supported", device=self.name)

    def create_context(self, params: Mapping[str, Any]) -> Any:
        """A :class:`~aioinfer.RemoteContext` of this device with ``params``."""
        raise NotSupportedError(f"{self.name}: remote contexts are not supported",
                                device=self.name)

    def add_operations(self, ops: Iterable[Any]) -> None:
        """Run these custom operations (:class:`aioinfer.Op` subclasses) in models compiled
        from now on; set ``runs_operations`` when implementing it. Called by the Core's
        ``add_extension`` for this plugin instance only."""
        raise NotSupportedError(f"{self.name}: custom operations are not supported",
                                device=self.name)

    def is_available(self) -> bool:
        """Whether the hardware behind this plugin is present on this machine."""
        return True

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
