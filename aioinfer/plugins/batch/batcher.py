"""Batcher: the stage executor that coalesces concurrent runs into batch runs.

Each run of a BATCH request is one deferred stage. Its inputs (one sample each: dim 0 is 1)
join a queue in arrival order; nothing waits on a thread. A batch starts when a worker (an
infer request of the model compiled for batch N) is free and either N queued runs have the
same input shapes (Triton's rule: a batch never mixes shapes) or the oldest queued run has
waited ``AUTO_BATCH_TIMEOUT``. A partial batch of one runs on the batch-1 model; a partial
batch of k > 1 runs on the batch-N model padded with copies of its last sample. The outputs
are split back (row k of each output is the k-th run's: a view when the device allocates its
outputs per run, a copy when it reuses its buffers, see
:func:`~aioinfer.plugins.multi.outputs.fresh_outputs`) and each run resumes on the worker
thread that finished the batch, which then starts the next batch if one is ready. When a
batch fails, each of its runs is run again alone on the batch-1 model, so that only a run
that fails by itself fails (with its own error) and the others get their results. A
deadline is fired by the one timer thread of :mod:`.timer`. Runs whose inputs cannot join a
batch (dim 0 is not 1) and every run of an unbatchable model go to a batch-1 request at once.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import RequestCancelledError, RequestError
from ..multi.outputs import fresh_outputs, owned
from . import timer

if TYPE_CHECKING:
    from ...runtime.pipeline import PipelineRun
    from ...runtime.request import InferRequest
    from ...runtime.stages import Stage
    from ..base import CompiledModel


class Member:
    """One run waiting for (or in) a batch."""

    __slots__ = ("run", "index", "sync", "key", "arrived", "done")

    def __init__(self, run: PipelineRun, index: int, sync: Any, key: Any) -> None:
        self.run = run
        self.index = index
        self.sync = sync
        self.key = key
        self.arrived = time.monotonic()
        self.done = False


def sample_key(values: list[Any]) -> tuple[Any, ...] | None:
    """The shapes and dtypes of one sample's inputs, or ``None`` if it cannot join a batch."""
    key = []
    for value in values:
        if not isinstance(value, np.ndarray) or value.ndim == 0 or value.shape[0] != 1:
            return None
        key.append((value.dtype.str, value.shape))
    return tuple(key)


class Batcher:
    """Collects runs into batches of ``batch`` (see the module docstring)."""

    lane = None

    def __init__(self, name: str, batch: int, timeout_ms: Callable[[], float],
                 batched: CompiledModel | None, single: CompiledModel, workers: int) -> None:
        self.name = name
        self.batch = batch if batched is not None else 1
        self._timeout_ms = timeout_ms
        self._single = single
        self._fresh = batched is None or fresh_outputs(batched)  # rows handed on as views
        self._fresh_single = fresh_outputs(single)
        self._lock = threading.Lock()
        self._idle: list[InferRequest] = (
            [batched.create_infer_request() for _ in range(workers)] if batched else [])
        self._spare: list[InferRequest] = []  # batch-1 requests
        self._pending: list[Member] = []
        self._armed: float | None = None
        self.batches = 0  # batch runs started (statistics)
        self.sizes: dict[int, int] = {}  # runs per batch size, partial ones included
        self.retried = 0  # runs of failed batches run again alone
        self._closing = False  # released: queued runs start now, no deadline is armed

    # -- StageExecutor ---------------------------------------------------------------------------
    def submit(self, run: PipelineRun, index: int) -> None:
        fn = run.graph.stages[index].fn
        if not isinstance(fn, BatchStage):
            run.execute(index, None)  # a stage someone put before ours
            return
        reason = run.stop_reason()
        if reason is not None:
            run.resume(index, reason)
            return
        run.defer(index)
        key = sample_key(fn.request.inputs) if self.batch > 1 else None
        member = Member(run, index, fn.request, key)
        if key is None:
            self._run_single([member])
            return
        with self._lock:
            self._pending.append(member)
            ready = self._ready_locked()
        self._start(ready)
        run.on_cancel(lambda: self._cancel(member))

    def run_inline(self, stage: Stage) -> None:
        stage.fn()

    # -- forming batches (under the lock) --------------------------------------------------------
    def _ready_locked(self) -> list[tuple[list[Member], InferRequest]]:
        ready = []
        timeout = 0.0 if self._closing else self._timeout_ms() / 1000.0
        while self._idle and self._pending:
            members = self._full_batch_locked()
            if members is None:
                oldest = self._pending[0]
                if time.monotonic() < oldest.arrived + timeout:
                    break
                members = [m for m in self._pending if m.key == oldest.key][:self.batch]
            taken = set(map(id, members))
            self._pending = [m for m in self._pending if id(m) not in taken]
            ready.append((members, self._idle.pop()))
        # A deadline matters only while a worker is idle: a busy one looks again when its
        # batch ends (so a deadline already past never spins the timer).
        if self._pending and self._idle and not self._closing and (
                self._armed is None or self._pending[0].arrived + timeout < self._armed):
            self._armed = self._pending[0].arrived + timeout
            timer.call_at(self._armed, self._deadline)
        return ready

    def _full_batch_locked(self) -> list[Member] | None:
        counts: dict[Any, list[Member]] = {}
        for member in self._pending:
            group = counts.setdefault(member.key, [])
            group.append(member)
            if len(group) == self.batch:
                return group
        return None

    def _deadline(self) -> None:
        with self._lock:
            self._armed = None
            ready = self._ready_locked()
        self._start(ready)

    # -- running ---------------------------------------------------------------------------------
    def _start(self, ready: list[tuple[list[Member], InferRequest]]) -> None:
        for members, worker in ready:
            if len(members) == 1:  # holds the batch worker: later runs gather meanwhile
                self._run_single(members, worker)
                continue
            with self._lock:
                self.batches += 1
                self.sizes[len(members)] = self.sizes.get(len(members), 0) + 1
            pad = [members[-1]] * (self.batch - len(members))
            try:
                worker._sync.inputs[:] = [
                    np.concatenate([m.sync.inputs[i] for m in (*members, *pad)], axis=0)
                    for i in range(len(worker._sync.inputs))]
                worker._start_child(functools.partial(self._batch_ended, members, worker))
            except BaseException as exc:
                self._ended(members, worker, exc)

    def _batch_ended(self, members: list[Member], worker: InferRequest,
                     child: PipelineRun) -> None:
        self._ended(members, worker, child.error)

    def _ended(self, members: list[Member], worker: InferRequest,
               error: BaseException | None) -> None:
        if error is None:
            outputs = worker._sync.outputs
            for k, member in enumerate(members):
                rows = [out[k:k + 1] for out in outputs]
                member.sync.outputs = rows if self._fresh else owned(rows)
        with self._lock:
            self._idle.append(worker)
            for member in members:
                member.done = True
            if error is not None and not isinstance(error, RequestError):
                self.retried += len(members)
            ready = self._ready_locked()
        self._start(ready)
        if error is not None and not isinstance(error, RequestError):
            # One sample may have failed the batch: each run gets its own answer, alone.
            for member in members:
                if member.run.cancelled:
                    self._resume(member, error)
                else:
                    self._run_single([member])
            return
        for member in members:
            self._resume(member, error)

    def _run_single(self, members: list[Member], worker: InferRequest | None = None) -> None:
        """Run one member alone on a batch-1 request (holding ``worker``, the batch request
        whose turn it took, until it ends)."""
        member = members[0]
        with self._lock:
            self.sizes[1] = self.sizes.get(1, 0) + 1
            member.done = True
            request = self._spare.pop() if self._spare else None
        try:
            if request is None:
                request = self._single.create_infer_request()
            request._sync.inputs[:] = member.sync.inputs
            request._start_child(functools.partial(self._child_ended, member, request,
                                                   worker))
        except BaseException as exc:
            self._single_ended(member, None, worker, exc)

    def _child_ended(self, member: Member, request: InferRequest,
                     worker: InferRequest | None, child: PipelineRun) -> None:
        self._single_ended(member, request, worker, child.error)

    def _single_ended(self, member: Member, request: InferRequest | None,
                      worker: InferRequest | None, error: BaseException | None) -> None:
        if error is None and request is not None:
            outputs = list(request._sync.outputs)
            member.sync.outputs = outputs if self._fresh_single else owned(outputs)
        ready: list[tuple[list[Member], InferRequest]] = []
        with self._lock:
            if request is not None:
                self._spare.append(request)
            if worker is not None:
                self._idle.append(worker)
                ready = self._ready_locked()
        self._start(ready)
        self._resume(member, error)

    @staticmethod
    def _resume(member: Member, error: BaseException | None) -> None:
        if error is None and member.run.cancelled:
            error = RequestCancelledError("the infer request was cancelled")
        member.run.resume(member.index, error)

    def _cancel(self, member: Member) -> None:
        with self._lock:
            if member.done or member not in self._pending:
                return  # in a batch already: it finishes, the run reports the cancellation
            self._pending.remove(member)
            member.done = True
        member.run.resume(member.index, RequestCancelledError(
            "the infer request was cancelled while it waited for its batch"))

    def close(self) -> None:
        """The model is being released: start the queued runs now (as partial batches, as
        far as workers are free; the others fail once the device's model is released) and
        drop this batcher's deadlines from the timer."""
        with self._lock:
            self._closing = True
            ready = self._ready_locked()
        timer.cancel(self)
        self._start(ready)

    def run_one(self, request: Any) -> None:
        """The synchronous path: run ``request``'s sample on a batch-1 request."""
        with self._lock:
            single = self._spare.pop() if self._spare else None
        if single is None:
            single = self._single.create_infer_request()
        try:
            single._sync.inputs[:] = request.inputs
            single.infer()
            outputs = list(single._sync.outputs)
            request.outputs = outputs if self._fresh_single else owned(outputs)
        finally:
            with self._lock:
                self._spare.append(single)

    def __repr__(self) -> str:
        return f"<Batcher {self.name!r} batch={self.batch} pending={len(self._pending)}>"


class BatchStage:
    """The function of a BATCH request's stage; calling it is the synchronous path."""

    def __init__(self, request: Any, batcher: Batcher) -> None:
        self.request = request
        self._batcher = batcher

    def __call__(self) -> None:
        self._batcher.run_one(self.request)
