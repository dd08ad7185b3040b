"""Sync streams, notifications and data transfers: how tensors move between devices.

The protocol mirrors onnxruntime's plugin-EP ``OrtSyncStreamImpl`` / ``OrtSyncNotificationImpl``
/ ``OrtDataTransferImpl`` and plays the part of OpenVINO HETERO's cut-edge tensors:

- a :class:`SyncStream` is an ordered queue of work on one device (a CUDA stream on a GPU); it
  makes :class:`SyncNotification` objects and can be flushed;
- a notification is *activated* by the producer after its work (``cudaEventRecord``), a
  consumer stream *waits on device* for it without blocking the host
  (``cudaStreamWaitEvent``), and the host can *wait on host* (``cudaEventSynchronize``) or ask
  to be called back when it fires;
- a :class:`DataTransfer` says whether it ``can_copy`` between two memory devices and
  ``copy_tensors`` a batch of tensors onto the destination device, optionally on a stream.

Host plugins (NUMPY, TEMPLATE, the engines on the CPU) share :data:`HOST_MEMORY`: their stream
runs work at once, their notifications are activated when made, and the host transfer hands
the array over without a copy. A GPU plugin implements these three classes and nothing else
changes: a :class:`Transfer` stage runs on a :class:`StreamExecutor`, which starts the copy
when the producer's notification fires and never holds a worker thread while waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from .pipeline import PipelineRun
    from .stages import Stage

HOST_MEMORY = "host"
"""The memory device of every host plugin: arrays in the process's memory."""


class SyncNotification(Protocol):
    """A point in a stream's work that others can wait for."""

    def activate(self) -> None:
        """Producer side: fires once the work queued on the stream so far is done."""

    def wait_on_device(self, stream: SyncStream) -> None:
        """Make ``stream``'s later work wait for this notification (does not block the host)."""

    def wait_on_host(self) -> None:
        """Block the calling thread until the notification has fired."""

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on any thread) once fired; at once if it already has."""

    @property
    def fired(self) -> bool: ...


class SyncStream(Protocol):
    """An ordered queue of work on one memory device."""

    memory_device: str

    def create_notification(self) -> SyncNotification: ...

    def flush(self) -> None:
        """Submit queued work to the device (host streams have none queued)."""


class DataTransfer(Protocol):
    """Copies tensors between memory devices."""

    def can_copy(self, src_device: str, dst_device: str) -> bool: ...

    def copy_tensors(self, sources: Sequence[Any], dst_device: str,
                     stream: SyncStream | None = None) -> list[Any]:
        """The tensors ``sources`` on ``dst_device`` (asynchronously on ``stream`` if given:
        the results may be read only after the stream's work is done)."""


class HostNotification:
    """A notification of a host stream: host work is done when it is queued.

    One is made per subgraph and request in a HETERO pipeline, so it is a flag under a lock;
    a ``threading.Event`` (a Condition and a second lock, ~25 us made and set) is created only
    for a host thread that really waits."""

    __slots__ = ("_fired", "_callbacks", "_lock", "_waiter")

    def __init__(self) -> None:
        self._fired = False
        self._callbacks: list[Callable[[], None]] | None = None
        self._lock = threading.Lock()
        self._waiter: threading.Event | None = None

    @property
    def fired(self) -> bool:
        return self._fired

    def activate(self) -> None:
        with self._lock:
            self._fired = True
            callbacks, self._callbacks = self._callbacks, None
            waiter = self._waiter
        if waiter is not None:
            waiter.set()
        for callback in callbacks or ():
            callback()

    def wait_on_device(self, stream: SyncStream) -> None:
        pass  # host streams run in order on the host: nothing to wait for on a device

    def wait_on_host(self) -> None:
        with self._lock:
            if self._fired:
                return
            if self._waiter is None:
                self._waiter = threading.Event()
            waiter = self._waiter
        waiter.wait()

    def add_done_callback(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if not self._fired:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback()


class HostStream:
    """The stream of a host plugin: work runs when it is issued."""

    memory_device = HOST_MEMORY

    def create_notification(self) -> HostNotification:
        return HostNotification()

    def flush(self) -> None:
        pass

    def __repr__(self) -> str:
        return "<HostStream>"


class HostDataTransfer:
    """Between host plugins a transfer is a hand-over of the array (no copy)."""

    def can_copy(self, src_device: str, dst_device: str) -> bool:
        return src_device == dst_device == HOST_MEMORY

    def copy_tensors(self, sources: Sequence[Any], dst_device: str,
                     stream: SyncStream | None = None) -> list[Any]:
        # NumPy scalars become 0-d arrays: some engines return them for 0-d outputs.
        return [np.asarray(v) if isinstance(v, np.generic) else v for v in sources]


HOST_STREAM = HostStream()
HOST_TRANSFER = HostDataTransfer()


class Transfer:
    """The work of a transfer stage: read tensors produced on one device, copy them with
    ``transfer`` onto the consumer's memory device on the consumer's stream, write them.

    ``read`` and ``write`` are the explicit source and destination (slots of the request);
    ``source`` is the producer's notification for the current run, set by the producer stage
    when its work has been queued (``None``: nothing to wait for).
    """

    __slots__ = ("read", "write", "transfer", "stream", "dst_device", "source")

    def __init__(self, read: Callable[[], Sequence[Any]], write: Callable[[Sequence[Any]], None],
                 transfer: DataTransfer, stream: SyncStream, dst_device: str) -> None:
        self.read = read
        self.write = write
        self.transfer = transfer
        self.stream = stream
        self.dst_device = dst_device
        self.source: SyncNotification | None = None

    def __call__(self) -> None:
        if self.source is not None:
            self.source.wait_on_device(self.stream)
        self.write(self.transfer.copy_tensors(self.read(), self.dst_device, self.stream))


class StreamExecutor:
    """Runs :class:`Transfer` stages on a device's sync stream.

    A transfer is issued once its producer's notification has fired, on the thread that fired
    it or that submitted the stage; issuing a copy only queues it on the stream (on the host it
    is a hand-over), so no worker thread is taken and none waits.
    """

    lane = None

    def __init__(self, name: str, stream: SyncStream) -> None:
        self.name = name
        self.stream = stream

    def submit(self, run: PipelineRun, index: int) -> None:
        work = run.graph.stages[index].fn
        source = getattr(work, "source", None)
        if source is None or source.fired:
            run.execute(index, None)
        else:
            source.add_done_callback(lambda: run.execute(index, None))

    def run_inline(self, stage: Stage) -> None:
        source = getattr(stage.fn, "source", None)
        if source is not None:
            source.wait_on_host()
        stage.fn()

    def __repr__(self) -> str:
        return f"<StreamExecutor {self.name!r} on {self.stream!r}>"
