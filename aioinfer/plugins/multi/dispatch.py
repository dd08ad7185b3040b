"""Dispatch: each run of a MULTI or AUTO request goes to whichever device is free.

A compiled MULTI/AUTO model keeps, per device, a :class:`Lane`: a few infer requests of that
device's compiled model (its *workers*, as many as the device's
``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` or the ``(N)`` of ``MULTI:NUMPY(2),...``). One run of a
MULTI request is one stage on a :class:`DispatchExecutor`: it takes an idle worker of the
first device (in priority order) that has one, hands the request's inputs over, and starts the
worker without waiting for it (as :class:`~aioinfer.runtime.subrequest.RequestExecutor`
does). When no worker is idle the run waits in one shared queue, holding no thread; a
worker that finishes pulls the next waiting run itself. A slow device therefore only ever
takes the runs it is free for, and never holds a fast one back (no round-robin).

The queue is ordered by model priority, then by arrival: a :class:`Dispatcher` may be shared
by several compiled models (AUTO shares one per plugin) and cap the runs in flight per device,
so that a busy device serves the ``MODEL_PRIORITY=HIGH`` model's runs first. With runtime
fallback a run that fails on a device is put back at the head of the queue for the other
devices. A cancelled run leaves the queue at once, or is cancelled on its worker.

Results are handed over, not copied: the arrays a worker's run returned become the outputs
of the MULTI request (NUMPY and TEMPLATE allocate their outputs per run).
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...errors import RequestCancelledError

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
it would finish it before the faster devices could get to it (see :meth:`Dispatcher._worth`)."""


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

    @property
    def devices(self) -> list[str]:
        return [lane.device for lane in self.lanes if not lane.draining]


class Job:
    """One run waiting for, or running on, a worker."""

    __slots__ = ("run", "index", "sync", "lanes", "seq", "excluded", "lane", "worker",
                 "finished", "started")

    def __init__(self, run: PipelineRun, index: int, sync: DispatchRequest, lanes: Lanes,
                 seq: int) -> None:
        self.run = run
        self.index = index
        self.sync = sync
        self.lanes = lanes
        self.seq = seq
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

    # -- entry points --------------------------------------------------------------------------
    def submit(self, run: PipelineRun, index: int, sync: DispatchRequest, lanes: Lanes) -> None:
        """Start stage ``index`` of ``run`` on a free worker, or queue it (never blocks)."""
        reason = run.stop_reason()
        if reason is not None:
            run.resume(index, reason)
            return
        run.defer(index)
        job = Job(run, index, sync, lanes, next(self._seq))
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
                del self._waiting[at], self._keys[at]
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
        for lane in job.lanes.lanes:
            if lane.draining or not lane.idle or lane.device in job.excluded:
                continue
            if self._capacity is not None:
                cap = self._capacity(lane.device)
                if cap is not None and self._running.get(lane.device, 0) >= cap:
                    continue
            if self.policy == EARLIEST_FINISH and not self._worth(lane, job, ahead):
                continue
            return lane
        return None

    @staticmethod
    def _worth(lane: Lane, job: Job, ahead: int) -> bool:
        """EARLIEST_FINISH: a lane takes a run only if the faster lanes would not get to it
        within this lane's own run time (they finish ``workers * mine / theirs`` runs meanwhile):
        a slow device takes the overflow of a deep queue, never the runs a fast one would
        finish sooner, so it cannot make the model slower than its fastest device (on a host
        whose devices share cores, a slow device's run also takes cores from the fast one)."""
        mine = lane.seconds
        if mine <= 0.0:
            return True  # not measured yet: one run measures it
        reach = 0.0
        for other in job.lanes.lanes:
            if (other is not lane and not other.draining and other.device not in job.excluded
                    and 0.0 < other.seconds < mine):
                reach += other.workers * mine / other.seconds
        return ahead >= reach

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

    def _drain_locked(self) -> list[tuple[Job, Lane, InferRequest]]:
        """Every waiting run that can start now, in queue order."""
        starts = []
        k = 0
        while k < len(self._waiting):
            job = self._waiting[k]
            lane = self._free_lane(job, k)
            if lane is None:
                k += 1
                continue
            del self._waiting[k], self._keys[k]
            starts.append((job, lane, self._claim(job, lane)))
        return starts

    # -- running on a worker -------------------------------------------------------------------
    def _start(self, job: Job, lane: Lane, worker: InferRequest) -> None:
        job.started = time.perf_counter()
        try:
            worker._sync.inputs[:] = job.sync.inputs  # a hand-over: no copy, no kernel
            worker._start_child(lambda child: self._ended(job, lane, worker, child))
        except BaseException as exc:  # e.g. the device's model was released
            self._ended(job, lane, worker, None, exc)

    def _ended(self, job: Job, lane: Lane, worker: InferRequest, child: PipelineRun | None,
               error: BaseException | None = None) -> None:
        """A worker's run has ended (on the thread that ended it): deliver or retry the
        job, then give the worker the next waiting run."""
        if child is not None:
            error = child.error
        retry = False
        if error is None:
            job.sync.outputs = list(worker._sync.outputs)
            job.sync.executed_on = lane.device
        elif (job.lanes.runtime_fallback and not job.run.cancelled
              and not isinstance(error, RequestCancelledError)):
            job.excluded.add(lane.device)
            retry = any(not other.draining and other.device not in job.excluded
                        for other in job.lanes.lanes)
            if not retry and job.lanes.on_failure is not None:
                retry = job.lanes.on_failure(lane, error)  # compiles off this thread
        drained: Lane | None = None
        elapsed = time.perf_counter() - job.started
        with self._lock:
            if error is None:  # falls fast, rises slowly: a first run's warm-up fades soon
                alpha = 0.5 if elapsed < lane.seconds else 0.1
                lane.seconds = elapsed if lane.seconds <= 0.0 else (
                    (1.0 - alpha) * lane.seconds + alpha * elapsed)
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
            del self._waiting[at], self._keys[at]
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
    device that can take it. A stage whose function is not a :class:`Dispatch` (a stage a
    test put in front) runs inline on the submitting thread."""

    lane = None

    def __init__(self, name: str, dispatcher: Dispatcher) -> None:
        self.name = name
        self.dispatcher = dispatcher

    def submit(self, run: PipelineRun, index: int) -> None:
        fn = run.graph.stages[index].fn
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

