"""Executors: named sets of worker threads that run request stages.

A device's executor has one worker per stream. Workers are started lazily on the first
submission, are daemon threads named ``aioinfer:<executor>:<n>``, and exit after
``idle_timeout`` seconds without work (or at :meth:`Executor.close`, or when the executor is
garbage collected), so the process's thread count returns to its baseline.

``run_sync(fn)`` runs a stage inline on the calling thread (the synchronous path).
``await run(fn)`` runs it on a worker without blocking the event loop, under asyncio, uvloop or
trio; a cancelled ``run`` returns only once ``fn`` has finished, then re-raises the
cancellation. ``submit(run, index)`` is the :class:`~aioinfer.runtime.stages.StageExecutor`
entry used by request pipelines: a worker calls ``run.execute(index, lane)`` (``lane`` is the
executor's worker pool), and the run decides where its next stage runs.

On Linux, workers can run at a lower scheduling priority than the event loop's thread
(:func:`set_worker_nice`, or the ``AIOINFER_WORKER_NICE`` environment variable): when the loop
thread wakes up on a machine whose cores the workers keep busy, the kernel then lets it run at
once instead of after a time slice, and it gets the GIL sooner too. Measured on ResNet-50 with
two streams on 2 busy cores: loop-lag p99 about 2 ms at nice 5 instead of 4-6 ms, throughput
unchanged (``benchmarks/loop_lag.py --worker-nice 5``). It is off by default because it also
lowers the workers' share against other processes. Engines that compute on threads of their
own (OpenVINO's streams) get the same nice through :func:`nice_engine_threads`.
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

_STOP = None  # queue sentinel: one worker exits

# Native thread ids of every live executor worker of this process, whatever plugin owns it: a
# kernel that wants to spread over the machine's cores (NUMPY's BLAS threads) looks here to
# tell whether another device's stage is computing on those cores right now.
WORKER_TIDS: set[int] = set()

ANY_LANE = object()
"""The lane of :data:`HOST`: its stages (input conversion, output collection: light host work)
run inline on whichever worker of ours holds the run, instead of costing a hand-over to a HOST
thread and back. Measured on a HETERO NUMPY+TEMPLATE pipeline: TEMPLATE's pre/postprocess hops
woke HOST's four threads ~2,300 times a second and slowed both devices' stages by a quarter."""

_worker = threading.local()  # .lane: the pool of the executor whose worker this thread is


def worker_lane() -> object | None:
    """The lane of the executor worker running on this thread, or ``None`` (the loop thread,
    a user's thread)."""
    return getattr(_worker, "lane", None)

_worker_nice = 0


def set_worker_nice(nice: int) -> None:
    """Run worker threads started from now on at ``nice`` (0-19, Linux only; 0 = unchanged).

    A higher value is a lower priority than the event loop's thread. A thread cannot get its
    priority back without privileges, so running workers keep theirs until they exit (idle).
    """
    global _worker_nice
    if not isinstance(nice, int) or not 0 <= nice <= 19:
        raise ValueError(f"worker nice must be an integer 0..19, got {nice!r}")
    _worker_nice = nice


def _nice_from_env() -> None:
    value = os.environ.get("AIOINFER_WORKER_NICE", "").strip()
    if value:
        try:
            set_worker_nice(int(value))
        except ValueError as exc:
            raise ValueError(f"AIOINFER_WORKER_NICE={value!r}: {exc}") from None


def _apply_nice() -> None:
    nice = _worker_nice
    if nice and sys.platform == "linux":  # per-thread only on Linux (a thread is a task)
        try:
            current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(nice, current))
        except OSError:  # not permitted in this sandbox: keep the inherited priority
            pass


def nice_engine_threads() -> None:
    """Give the workers' nice to every thread of this process that Python did not start (an
    engine's stream and pool threads: OpenVINO's, OpenBLAS's), so that they yield to the event
    loop's thread as our workers do. Engines start those threads themselves, at compile or at
    the first inference, so a plugin calls this after its first inference. Does nothing while
    the nice is 0 or off Linux."""
    nice = _worker_nice
    if not nice or sys.platform != "linux":
        return
    python = {thread.native_id for thread in threading.enumerate()}
    try:
        tids = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return
    for tid in tids:
        if tid in python:
            continue
        try:
            os.setpriority(os.PRIO_PROCESS, tid, max(nice, os.getpriority(os.PRIO_PROCESS, tid)))
        except OSError:  # exited meanwhile, or not permitted here
            pass


_nice_from_env()


class Task(Protocol):
    """Something a worker runs: ``execute(index, lane)`` is called on the worker thread."""

    def execute(self, index: int, lane: object | None) -> None: ...


class _Call:
    """A single function as a :class:`Task` (used by :meth:`Executor.run`)."""

    __slots__ = ("fn", "value", "error", "notify")

    def __init__(self, fn: Callable[[], Any], notify: Callable[[], None]) -> None:
        self.fn = fn
        self.value: Any = None
        self.error: BaseException | None = None
        self.notify = notify

    def execute(self, index: int, lane: object | None) -> None:
        try:
            self.value = self.fn()
        except BaseException as exc:  # delivered to the awaiting caller
            self.error = exc
        self.notify()


class _Pool:
    """The threads and queue of one executor; workers hold this, never the executor, so a
    dropped executor is collected and its finalizer stops the workers."""

    def __init__(self, name: str, workers: int, serial: int) -> None:
        self.name = name
        self.workers = workers
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.alive = 0
        self.threads: set[threading.Thread] = set()
        self.closed = False
        self.serial = serial
        self.idle_timeout = 2.0

    def submit(self, task: Task, index: int = 0) -> None:
        # Under the lock: a task is either refused or queued ahead of every stop sentinel, so
        # ``stop`` never strands one (its awaiting caller would wait forever).
        with self.lock:
            if self.closed:
                from ..errors import RequestError

                raise RequestError(f"executor {self.name!r} is closed (its compiled model was "
                                   "released): no new work is accepted")
            self.queue.put((task, index))
            if self.alive < self.workers:
                self._spawn_locked()

    def _spawn_locked(self) -> None:
        self.alive += 1
        thread = threading.Thread(
            target=self.work,
            name=f"aioinfer:{self.name}:{self.serial}.{len(self.threads)}",
            daemon=True,
        )
        self.threads.add(thread)
        thread.start()

    def work(self) -> None:
        _apply_nice()
        tid = threading.get_native_id()
        WORKER_TIDS.add(tid)
        _worker.lane = self
        get = self.queue.get
        empty = queue.Empty
        try:
            while True:
                try:
                    task = get(timeout=self.idle_timeout)
                except empty:
                    with self.lock:
                        self.alive -= 1
                        if self.queue.empty():  # else a task came in meanwhile
                            return
                        self.alive += 1
                    continue
                if task is _STOP:
                    with self.lock:
                        self.alive -= 1
                    return
                task[0].execute(task[1], self)
                del task
        finally:
            WORKER_TIDS.discard(tid)
            with self.lock:
                self.threads.discard(threading.current_thread())

    def stop(self, join_timeout: float | None = None) -> None:
        with self.lock:
            self.closed = True
            threads = list(self.threads)
        for _ in threads:
            self.queue.put(_STOP)
        if join_timeout is None:
            return
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join(join_timeout)


class Executor:
    """A bounded set of worker threads for one device (or the host): the thread-pool
    :class:`~aioinfer.runtime.stages.StageExecutor`."""

    _ids = itertools.count()

    def __init__(self, name: str, workers: int = 1, *, idle_timeout: float = 2.0,
                 anywhere: bool = False) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"executor {name!r}: workers must be an integer >= 1, got {workers!r}")
        self.name = name
        self._pool = _Pool(name, workers, next(Executor._ids))
        self._pool.idle_timeout = idle_timeout
        # The worker pool: stages on executors with the same lane run inline one after the
        # other on one worker (a plain attribute: read once per stage). ``anywhere``: the
        # executor's stages also run inline on any other executor's worker (ANY_LANE).
        self.lane: object = ANY_LANE if anywhere else self._pool
        # submit(task, index=0): queue ``task``; a worker calls ``task.execute(index, lane)``.
        # The pool's own method, bound here: one call less on every hand-over.
        self.submit: Callable[[Task, int], None] = self._pool.submit
        # Stop the workers when the executor is dropped (e.g. with its CompiledModel).
        self._finalizer = weakref.finalize(self, self._pool.stop)

    @property
    def workers(self) -> int:
        """The maximum number of worker threads (one per stream)."""
        return self._pool.workers

    @property
    def alive(self) -> int:
        """Worker threads running right now."""
        return self._pool.alive

    @property
    def idle_timeout(self) -> float:
        """Seconds a worker waits for work before it exits (it is restarted on demand)."""
        return self._pool.idle_timeout

    # -- running -------------------------------------------------------------------------------
    def run_sync(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the calling thread."""
        return fn()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on one of this executor's workers and await its result.

        Never blocks the event loop. If the awaiting task is cancelled, ``fn`` still runs to its
        end (it is never abandoned) and the cancellation is re-raised after it has finished.
        """
        from .completion import await_task

        call = _Call(fn, _noop)
        pool = self._pool

        def start(notify: Callable[[], None]) -> None:
            call.notify = notify
            pool.submit(call)

        await await_task(start)
        if call.error is not None:
            raise call.error
        return call.value

    def run_inline(self, stage: Any) -> None:
        """Run a stage on the calling thread (the synchronous ``infer()`` path)."""
        stage.fn()

    # -- lifetime ------------------------------------------------------------------------------
    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the workers once the queued tasks are done and join them (up to ``timeout``).

        A closed executor refuses new work with :class:`~aioinfer.errors.RequestError`.
        """
        self._pool.stop(timeout)

    def __repr__(self) -> str:
        pool = self._pool
        state = "closed" if pool.closed else f"alive={pool.alive}"
        return f"<Executor {self.name!r} workers={pool.workers} {state}>"


def _noop() -> None:
    pass


class ExecutorRegistry:
    """Executors handed out per stream configuration, shared by the compiled models of a
    plugin that use it (OpenVINO's executor manager): compiling ten models for a device with
    two streams makes two worker threads, not twenty. An executor is closed when the last
    model holding it is released (or collected)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[Executor, int]] = {}

    def acquire(self, owner: object, workers: int, kind: str = "streams"
                ) -> tuple[Executor, Callable[[], Any]]:
        """An executor with ``workers`` workers leased to ``owner``, and the function that
        gives the lease back (once; it is also called if ``owner`` is collected first)."""
        key = f"{self.device}:{kind}={workers}"
        with self._lock:
            executor, count = self._leases.get(key, (None, 0))
            if executor is None or executor._pool.closed:
                executor, count = Executor(key, workers=workers), 0
            self._leases[key] = (executor, count + 1)
        return executor, weakref.finalize(owner, self.release, executor)

    def release(self, executor: Executor, timeout: float | None = 5.0) -> None:
        """Give one lease back; the last one closes the executor (joining its workers)."""
        with self._lock:
            held, count = self._leases.get(executor.name, (None, 0))
            if held is not executor:
                return
            if count > 1:
                self._leases[executor.name] = (executor, count - 1)
                return
            del self._leases[executor.name]
        executor.close(timeout)

    def leases(self, executor: Executor) -> int:
        """How many compiled models hold ``executor``."""
        held, count = self._leases.get(executor.name, (None, 0))
        return count if held is executor else 0


HOST = Executor("host", workers=4, anywhere=True)
"""Executor for light host-side stages (input conversion, output collection): they run on
the worker that holds the run when there is one (:data:`ANY_LANE`), on HOST's own threads
when the run comes from elsewhere (the event loop)."""

WAIT = Executor("wait", workers=16)
"""Executor for stages that only wait (on another device, a file, a notification), so that
waiting never holds a compute worker."""
