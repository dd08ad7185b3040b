"""Dispatch: each run of a MULTI or AUTO request goes to whichever device is free.

A compiled MULTI/AUTO model keeps, per device, a :class:`Lane`: a few infer requests of that
device's compiled model (its *workers*, as many as the device's
``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` or the ``(N)`` of ``MULTI:NUMPY(2),...``). One run of a
MULTI request is one stage on a :class:`DispatchExecutor`: it takes an idle worker of the
first device (in priority order) that should take it (:mod:`.policy`), hands the request's
inputs over, and starts the worker without waiting for it (its run's completion calls back).
When no worker should take it the run waits in one shared queue, holding no thread; a
worker that finishes pulls the next waiting run itself. A slow device therefore only ever
takes the runs it is free for and would finish first, and never holds a fast one back (no
round-robin).

The run is dispatched from the thread that starts it (the event loop's, for ``infer_async``):
that is a lock, a list and a queue put, no kernel and no copy. The user's inputs go to the
worker unchecked and the worker's own run checks them on its device's thread, so a MULTI run
costs no extra thread hop over its device's own; the checked inputs come back to the MULTI
request with the results.

The queue is ordered by model priority, then by arrival: a :class:`Dispatcher` may be shared
by several compiled models (AUTO shares one per plugin) and cap the runs in flight per device,
so that a busy device serves the ``MODEL_PRIORITY=HIGH`` model's runs first. With runtime
fallback a run that fails on a device is put back at the head of the queue for the other
devices (bad inputs are not retried: every device would refuse them). A cancelled run leaves
the queue at once, or is cancelled on its worker.

Results are handed over without a copy when the device allocates its outputs per run
(:func:`.outputs.fresh_outputs`); otherwise they are copied on the worker's thread before
the worker takes its next run, which would overwrite them.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ... import properties as P
from ...errors import InputError, RequestCancelledError
from ...runtime.executors import HOST
from .outputs import fresh_outputs, owned
from .policy import PROBE_COST, PROBE_FIRST_S, worth

if TYPE_CHECKING:
    from ...runtime.pipeline import PipelineRun
    from ...runtime.request import InferRequest
    from ...runtime.stages import Stage
    from ..base import CompiledModel


DEVICE_PRIORITY = "DEVICE_PRIORITY"
"""``SCHEDULE_POLICY``: a run goes to the first device in priority order with an idle worker
(OpenVINO's MULTI)."""
EARLIEST_FINISH = "EARLIEST_FINISH"
"""``SCHEDULE_POLICY`` (the default): as DEVICE_PRIORITY, but a device takes a run only if
it would finish it before the faster devices could, without taking cores from them
(:mod:`.policy`)."""


def compute_group(compiled: CompiledModel) -> tuple[str | None, int]:
    """The compute a device's runs use (its ``DEVICE_UUID``, ``None`` if it reports none) and
    how many runs that compute holds at once (the host's cores for the host CPU, else 0: the
    largest worker count of the devices that share it)."""
    try:
        uuid = str(compiled.plugin.get_property(P.DEVICE_UUID) or "") or None
    except Exception:  # a plugin without the property: a compute of its own
        return None, 0
    return uuid, P.host_cores() if uuid == P.host_cpu_uuid() else 0


class Lane:
    """One device of one compiled model: its compiled model and worker requests."""

    def __init__(self, device: str, compiled: CompiledModel, workers: int) -> None:
        self.device = device
        self.compiled = compiled
        self.workers = workers
        self.idle: list[InferRequest] = [compiled.create_infer_request() for _ in range(workers)]
        self.busy = 0
        self.draining = False  # takes no new runs (AUTO's start-up helper after the switch)
        self.completed = 0  # runs this lane has finished (statistics)
        self.failed = 0
        self.seconds = 0.0  # moving average of a run's wall time here (0: not measured yet)
        self.warm = False  # the first run (a warm-up) is not measured
        self.measured_at = 0.0  # time.monotonic() of the last measured run
        self.probe_at = 0.0  # when a lane the policy turns away may take a run anyway
        self.probe_every = PROBE_FIRST_S
        self.group, self.cores = compute_group(compiled)
        self.fresh = fresh_outputs(compiled)  # results handed on without a copy

    def __repr__(self) -> str:
        state = " draining" if self.draining else ""
        return f"<Lane {self.device} busy={self.busy}/{self.workers}{state}>"


class Lanes:
    """The devices one compiled model dispatches to, in priority order (replaced as a whole
    under the dispatcher's lock when AUTO switches devices)."""

    def __init__(self, lanes: list[Lane], *, rank: int = 1, runtime_fallback: bool = False,
                 on_failure: Callable[[Lane, BaseException], bool] | None = None) -> None:
        self.lanes = lanes
        self.rank = rank
        self.runtime_fallback = runtime_fallback
        # AUTO: called when a run failed on a lane; True if another lane is on its way
        self.on_failure = on_failure
        self.on_idle: Callable[[Lane], None] | None = None  # a draining lane is all back
        self.retired: list[Lane] = []  # drained and dropped (kept for statistics)
        self._fix_groups()

    @property
    def lanes(self) -> list[Lane]:
        return self._lanes

    @lanes.setter
    def lanes(self, lanes: list[Lane]) -> None:
        self._lanes = lanes
        self._fix_groups()

    def _fix_groups(self) -> None:
        """A shared compute without a known size holds as many runs as its largest lane."""
        sizes: dict[str, int] = {}
        for lane in self._lanes:
            if lane.group is not None and lane.cores <= 0:
                sizes[lane.group] = max(sizes.get(lane.group, 0), lane.workers)
        for lane in self._lanes:
            if lane.group in sizes:
                lane.cores = sizes[lane.group]

    @property
    def devices(self) -> list[str]:
        return [lane.device for lane in self.lanes if not lane.draining]


class Job:
    """One run waiting for, or running on, a worker."""

    __slots__ = ("run", "index", "sync", "lanes", "seq", "excluded", "lane", "worker",
                 "finished", "started", "raw")

    def __init__(self, run: PipelineRun, index: int, sync: DispatchRequest, lanes: Lanes,
                 seq: int, raw: Any) -> None:
        self.run = run
        self.index = index
        self.sync = sync
        self.lanes = lanes
        self.seq = seq
        self.raw = raw  # the caller's inputs, checked by the worker (None: sync.inputs)
        self.excluded: set[str] = set()
        self.lane: Lane | None = None
        self.worker: InferRequest | None = None
        self.finished = False
        self.started = 0.0

    def key(self) -> tuple[int, int]:
        return (self.lanes.rank, self.seq)


class Dispatcher:
    """The shared queue of runs and the workers pulling from it.

    ``capacity(device)`` caps the runs in flight on a device across every compiled model of
    this dispatcher (``None``: only the lanes' workers bound it).
    """

    def __init__(self, capacity: Callable[[str], int | None] | None = None,
                 policy: str = EARLIEST_FINISH) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._waiting: list[Job] = []  # sorted by (model priority rank, arrival)
        self._keys: list[tuple[int, int]] = []
        self._seq = itertools.count()
        self._running: dict[str, int] = {}
        self._capacity = capacity
        self._queued: dict[int, int] = {}  # waiting runs per Lanes (by id)

    # -- entry points --------------------------------------------------------------------------
    def submit(self, run: PipelineRun, index: int, sync: DispatchRequest, lanes: Lanes,
               raw: Any = None) -> None:
        """Start stage ``index`` of ``run`` on a free worker, or queue it (never blocks).
        ``raw``: the caller's inputs, not checked yet (``None``: ``sync.inputs`` are)."""
        reason = run.stop_reason()
        if reason is not None:
            run.resume(index, reason)
            return
        run.defer(index)
        job = Job(run, index, sync, lanes, next(self._seq), raw)
        with self._lock:
            lane = self._free_lane(job, len(self._waiting))
            worker = self._claim(job, lane) if lane is not None else None
            if worker is None:
                self._enqueue(job)
        if lane is not None and worker is not None:
            self._start(job, lane, worker)
        run.on_cancel(lambda: self._cancel(job))

    def wake(self) -> None:
        """Start waiting runs on lanes that have become free (new lanes added by AUTO)."""
        with self._lock:
            starts = self._drain_locked()
        for job, lane, worker in starts:
            self._start(job, lane, worker)

    def set_lanes(self, lanes: Lanes, active: list[Lane],
                  draining: Sequence[Lane] = ()) -> None:
        """Make ``active`` the lanes of ``lanes`` (``draining`` ones finish their runs and
        take no new ones), then start waiting runs on them (AUTO's switch)."""
        with self._lock:
            for lane in draining:
                lane.draining = True
            lanes.lanes = [*active, *draining]
            idle = [lane for lane in draining if lane.busy == 0]
            starts = self._drain_locked()
        for job, lane, worker in starts:
            self._start(job, lane, worker)
        for lane in idle:
            if lanes.on_idle is not None:
                lanes.on_idle(lane)

    def drop_lane(self, lanes: Lanes, lane: Lane) -> None:
        """Forget a drained lane."""
        with self._lock:
            lanes.lanes = [other for other in lanes.lanes if other is not lane]
            lanes.retired.append(lane)

    def fail_stranded(self, lanes: Lanes, error: BaseException) -> None:
        """Fail the waiting runs of ``lanes`` that no lane can take any more (the device a
        runtime fallback waited for failed to compile)."""
        with self._lock:
            stranded = [job for job in self._waiting if job.lanes is lanes and not any(
                not lane.draining and lane.device not in job.excluded for lane in lanes.lanes)]
            for job in stranded:
                at = self._waiting.index(job)
                self._remove_at(at)
                job.finished = True
        for job in stranded:
            job.run.resume(job.index, error)

    @property
    def waiting(self) -> int:
        """Runs queued for a worker right now."""
        return len(self._waiting)

    # -- bookkeeping (under the lock) ----------------------------------------------------------
    def _free_lane(self, job: Job, ahead: int) -> Lane | None:
        """The first lane in priority order with an idle worker that should take ``job``,
        which has ``ahead`` runs queued in front of it."""
        order = job.lanes.lanes
        if not any(lane.idle for lane in order):
            return None  # the common case of a deep queue: every worker is busy
        usable = [lane for lane in order
                  if not lane.draining and lane.device not in job.excluded]
        now = time.monotonic()
        for lane in usable:
            if not lane.idle:
                continue
            if self._capacity is not None:
                cap = self._capacity(lane.device)
                if cap is not None and self._running.get(lane.device, 0) >= cap:
                    continue
            if self.policy == EARLIEST_FINISH and not worth(lane, usable, order, ahead, now):
                continue
            return lane
        return None

    def _claim(self, job: Job, lane: Lane) -> InferRequest:
        worker = lane.idle.pop()
        lane.busy += 1
        self._running[lane.device] = self._running.get(lane.device, 0) + 1
        job.lane, job.worker = lane, worker
        return worker

    def _enqueue(self, job: Job, *, front: bool = False) -> None:
        key = (job.lanes.rank, -1 if front else job.seq)
        at = bisect.bisect_right(self._keys, key)
        self._keys.insert(at, key)
        self._waiting.insert(at, job)
        self._queued[id(job.lanes)] = self._queued.get(id(job.lanes), 0) + 1

    def _remove_at(self, at: int) -> None:
        job = self._waiting.pop(at)
        del self._keys[at]
        left = self._queued[id(job.lanes)] - 1
        if left:
            self._queued[id(job.lanes)] = left
        else:
            del self._queued[id(job.lanes)]

    def _drain_locked(self) -> list[tuple[Job, Lane, InferRequest]]:
        """Every waiting run that can start now, in queue order.

        A lane that turns a run away at queue position k would take it only further back
        (the expected-finish rule; the core rule and probes do not depend on the position),
        so one look at the back of the queue tells whether the rest of a model's runs need
        a look at all: a completion costs one or two policy checks, not one per queued run.
        """
        starts = []
        full: set[int] = set()  # the Lanes none of whose waiting runs can start in this pass
        last = len(self._waiting) - 1
        k = 0
        while k < len(self._waiting):
            job = self._waiting[k]
            lane = None
            if id(job.lanes) not in full:
                if not any(other.idle for other in job.lanes.lanes):
                    full.add(id(job.lanes))
                else:
                    lane = self._free_lane(job, k)
                    if lane is None and not job.excluded and (
                            self._free_lane(job, last) is None):
                        full.add(id(job.lanes))
                if lane is None and len(full) == len(self._queued):
                    break  # no waiting run has a free worker that would take it
            if lane is None:
                k += 1
                continue
            self._remove_at(k)
            starts.append((job, lane, self._claim(job, lane)))
        return starts

    # -- running on a worker -------------------------------------------------------------------
    def _start(self, job: Job, lane: Lane, worker: InferRequest) -> None:
        job.started = time.perf_counter()
        try:
            if job.raw is None:
                worker._sync.inputs[:] = job.sync.inputs  # a hand-over: no copy, no kernel
            # as InferRequest._start_child, with the caller's inputs, which the worker's run
            # checks on the device's own thread (start_async would cost an Event per run)
            child = worker._begin(job.raw)
        except BaseException as exc:  # e.g. the device's model was released
            self._finish(job, lane, worker, exc)
            return
        try:
            child.start(lambda: self._ended(job, lane, worker, child))
        except BaseException as exc:  # a closed executor
            worker._busy.release()
            self._finish(job, lane, worker, exc)

    def _ended(self, job: Job, lane: Lane, worker: InferRequest, child: PipelineRun) -> None:
        """A worker's run has ended (on the thread that ended it; the worker is free)."""
        error = child.error
        if error is None:
            try:
                outputs = list(worker._sync.outputs)
                job.sync.outputs = outputs if lane.fresh else owned(outputs)
                if job.raw is not None:
                    job.sync.inputs[:] = worker._sync.inputs  # the checked inputs
            except BaseException as exc:  # a copy that could not be made
                error = exc
        self._finish(job, lane, worker, error)

    def _finish(self, job: Job, lane: Lane, worker: InferRequest,
                error: BaseException | None) -> None:
        """Deliver or retry the job, then give the worker the next waiting run."""
        retry = False
        if error is None:
            job.sync.executed_on = lane.device
        elif (job.lanes.runtime_fallback and not job.run.cancelled
              and not isinstance(error, (RequestCancelledError, InputError))):
            job.excluded.add(lane.device)
            retry = any(not other.draining and other.device not in job.excluded
                        for other in job.lanes.lanes)
            if not retry and job.lanes.on_failure is not None:
                retry = job.lanes.on_failure(lane, error)  # compiles off this thread
        drained: Lane | None = None
        elapsed = time.perf_counter() - job.started
        with self._lock:
            if error is None and not lane.warm:
                lane.warm = True  # a warm-up: not what the next runs will take
            elif error is None:  # falls fast, rises slowly
                if lane.seconds <= 0.0:  # measured now: the probes wait from here
                    lane.probe_at = time.monotonic() + max(lane.probe_every,
                                                           PROBE_COST * elapsed)
                alpha = 0.5 if elapsed < lane.seconds else 0.1
                lane.seconds = elapsed if lane.seconds <= 0.0 else (
                    (1.0 - alpha) * lane.seconds + alpha * elapsed)
                lane.measured_at = time.monotonic()
            lane.busy -= 1
            self._running[lane.device] -= 1
            lane.completed += error is None
            lane.failed += error is not None
            lane.idle.append(worker)
            if lane.draining and lane.busy == 0:
                drained = lane
            if retry:
                job.lane = job.worker = None
                self._enqueue(job, front=True)
            else:
                job.finished = True
            starts = self._drain_locked()
        for next_job, next_lane, next_worker in starts:
            self._start(next_job, next_lane, next_worker)
        if drained is not None and job.lanes.on_idle is not None:
            job.lanes.on_idle(drained)
        if not retry:
            job.run.resume(job.index, error)

    def _cancel(self, job: Job) -> None:
        with self._lock:
            if job.finished:
                return
            try:
                at = self._waiting.index(job)
            except ValueError:
                worker = job.worker
                if worker is not None:
                    worker.cancel()  # its run ends cancelled, and _ended delivers that
                return
            self._remove_at(at)
            job.finished = True
        job.run.resume(job.index, RequestCancelledError("the infer request was cancelled "
                                                        "while it waited for a device"))


class DispatchRequest:
    """What a MULTI/AUTO sync request shares with the dispatcher (its inputs and outputs)."""

    inputs: list[Any]
    outputs: list[Any]
    executed_on: str | None


class DispatchExecutor:
    """The stage executor of a MULTI/AUTO request: ``submit`` dispatches the run to a
    device's worker; ``run_inline`` (``infer()``) runs on the calling thread on the first
    device that can take it.

    Its ``lane`` is its own (no other executor's), so a run starts here: the dispatch stage
    is dispatched on the starting thread with the caller's inputs unchecked (the worker's
    run checks them). A stage in front of the dispatch (a test's gate) runs on ``HOST``
    after the inputs are checked there, as on any executor without workers."""

    def __init__(self, name: str, dispatcher: Dispatcher) -> None:
        self.name = name
        self.dispatcher = dispatcher
        self.lane: object = self

    def submit(self, run: PipelineRun, index: int) -> None:
        stages = run.graph.stages
        if index < 0:
            fn = stages[0].fn
            if not isinstance(fn, Dispatch):
                HOST.submit(run, -1)
                return
            raw, run.inputs = run.inputs, None
            self.dispatcher.submit(run, 0, fn.request, fn.lanes(), raw)
            return
        fn = stages[index].fn
        if isinstance(fn, Dispatch):
            self.dispatcher.submit(run, index, fn.request, fn.lanes())
        else:
            run.execute(index, None)

    def run_inline(self, stage: Stage) -> None:
        stage.fn()

    def __repr__(self) -> str:
        return f"<DispatchExecutor {self.name!r} waiting={self.dispatcher.waiting}>"


class Dispatch:
    """The function of a dispatch stage; calling it is the synchronous path."""

    def __init__(self, request: Any, lanes: Callable[[], Lanes],
                 inline: Callable[[], None]) -> None:
        self.request = request
        self.lanes = lanes
        self._inline = inline

    def __call__(self) -> None:
        self._inline()
