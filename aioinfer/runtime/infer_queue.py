"""AsyncInferQueue: a pool of infer requests fed from async code.

``await queue.submit(inputs, userdata)`` takes a free request (waiting for one, without ever
blocking the loop, when all are busy) and starts it; ``async for results in queue`` yields the
results in submission order; ``await queue.wait_all()`` waits until nothing is in flight.
Finished requests come back to the loop through its completion port (one wake-up for many), and
all bookkeeping happens on the loop thread, so the queue needs no lock.

Errors are delivered exactly once, to whichever consumer reaches them first, with
``error.inputs`` and ``error.userdata`` set to what was submitted: the ``async for`` (or
``ready_nowait``) that reaches the failed submission raises it in its place, and ``wait_all``
raises the earliest failed submission that nothing has raised yet. An error raised by
``wait_all`` is consumed: the iteration later skips that submission (it yields the others, in
order) instead of raising it again. With a callback set, the callback receives results and
errors instead; an exception raised by the callback itself is raised once by ``wait_all``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from .completion import current_port

if TYPE_CHECKING:
    from ..plugins.base import CompiledModel
    from .request import InferRequest
    from .results import Results

Callback = Callable[["Results | BaseException", Any], None]


class _Job:
    """One submission; ``deliver`` runs on the loop thread when its request has finished."""

    __slots__ = ("queue", "request", "run", "seq", "inputs", "userdata", "outcome", "consumed")

    def __init__(self, queue: AsyncInferQueue, request: InferRequest, seq: int,
                 inputs: Any, userdata: Any) -> None:
        self.queue = queue
        self.request = request
        self.seq = seq
        self.inputs = inputs
        self.userdata = userdata
        self.run: Any = None
        self.outcome: Results | BaseException | None = None
        self.consumed = False  # its error was raised by wait_all: iteration skips it

    def deliver(self) -> None:
        self.queue._finished(self)


class AsyncInferQueue:
    """``jobs`` infer requests of ``compiled`` serving submissions in order.

    ``jobs=0`` takes the compiled model's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``. A queue is used
    from one event loop at a time. Results are kept until they are iterated over, unless a
    callback is set (then the callback gets them and nothing is kept).
    """

    def __init__(self, compiled: CompiledModel, jobs: int = 0, *, ordered: bool = True) -> None:
        if not isinstance(jobs, int) or jobs < 0:
            raise ValueError(f"AsyncInferQueue: jobs must be an integer >= 0, got {jobs!r}")
        if jobs == 0:
            try:
                jobs = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            except Exception:
                jobs = 1
        self._requests = [compiled.create_infer_request() for _ in range(max(jobs, 1))]
        self._free: deque[InferRequest] = deque(self._requests)
        self._ordered = ordered
        self._callback: Callback | None = None
        self._submitted = 0
        self._yielded = 0
        self._in_flight = 0
        self._waiting_submitters = 0
        self._done: dict[int, _Job] = {}  # ordered: finished jobs by sequence number
        self._done_order: deque[_Job] = deque()  # unordered: finished jobs as they come
        self._errors: deque[BaseException] = deque()  # not yet raised to anyone
        self._changed: anyio.Event | None = None

    # -- public API ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._requests)

    @property
    def in_flight(self) -> int:
        """Submissions started and not finished yet."""
        return self._in_flight

    @property
    def outstanding(self) -> int:
        """Submissions not yielded yet: running, or finished and waiting for their turn."""
        return self._submitted - self._yielded

    def is_ready(self) -> bool:
        """Whether a request is free, so that ``submit`` would start at once."""
        return bool(self._free)

    def set_callback(self, callback: Callback | None) -> None:
        """Call ``callback(results_or_error, userdata)`` on the loop thread as each submission
        finishes (keep it short: it runs on the event loop)."""
        self._callback = callback

    async def submit(self, inputs: Any = None, userdata: Any = None) -> None:
        """Start an inference on a free request, first waiting for one if all are busy."""
        if not self._free:
            self._waiting_submitters += 1
            try:
                while not self._free:
                    await self._wait_changed()
            finally:
                self._waiting_submitters -= 1
        else:
            await anyio.lowlevel.checkpoint_if_cancelled()
        request = self._free.popleft()
        job = _Job(self, request, self._submitted, inputs, userdata)
        port = current_port()
        try:
            job.run = request._begin(inputs)
        except BaseException:
            self._free.appendleft(request)
            raise
        try:
            job.run.start(lambda: port.post(job))
        except BaseException:
            request._current = None
            request._busy.release()
            self._free.appendleft(request)
            raise
        self._submitted += 1
        self._in_flight += 1

    async def wait_all(self) -> None:
        """Wait until every submission has finished; raise the earliest error not yet raised
        (it is then consumed: iterating skips that submission)."""
        while self._in_flight:
            await self._wait_changed()
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._raise_pending_error()

    def __aiter__(self) -> AsyncInferQueue:
        return self

    async def __anext__(self) -> Results:
        """The next results (in submission order unless ``ordered=False``).

        Stops when every submission has been yielded and no ``submit`` is waiting.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()  # before taking: nothing is lost
        while True:
            job = self._take_finished()
            if job is not None:
                if job.consumed:
                    continue
                return self._unwrap(job)
            if self._yielded == self._submitted and not self._waiting_submitters:
                raise StopAsyncIteration
            await self._wait_changed()

    def ready_nowait(self) -> list[Results]:
        """Results that can be yielded now without waiting.

        A failed submission ends the list before it; called again, it raises that error.
        """
        out: list[Results] = []
        while (job := self._take_finished()) is not None:
            if job.consumed:
                continue
            if isinstance(job.outcome, BaseException) and out:
                self._untake(job)  # raise it on the next call, after these were handled
                break
            out.append(self._unwrap(job))
        return out

    def cancel_all(self) -> None:
        """Ask every running request to stop before its next stage (results are dropped)."""
        for request in self._requests:
            request.cancel()

    # -- loop-thread bookkeeping -----------------------------------------------------------------
    async def _wait_changed(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    def _notify_changed(self) -> None:
        event, self._changed = self._changed, None
        if event is not None:
            event.set()

    def _finished(self, job: _Job) -> None:
        run = job.run
        job.outcome = run.error if run.error is not None else run.results
        if isinstance(job.outcome, BaseException):
            _attach(job.outcome, job)
        elif job.outcome is not None:
            job.outcome.userdata = job.userdata
        job.run = None
        self._free.append(job.request)
        self._in_flight -= 1
        callback = self._callback
        if callback is not None:
            self._yielded += 1  # handed to the callback, not kept for iteration
            try:
                callback(job.outcome, job.userdata)
            except Exception as exc:
                self._errors.append(_attach(exc, job))
        else:
            if self._ordered:
                self._done[job.seq] = job
            else:
                self._done_order.append(job)
        self._notify_changed()

    def _take_finished(self) -> _Job | None:
        if self._ordered:
            job = self._done.pop(self._yielded, None)
        else:
            job = self._done_order.popleft() if self._done_order else None
        if job is not None:
            self._yielded += 1
        return job

    def _untake(self, job: _Job) -> None:
        self._yielded -= 1
        if self._ordered:
            self._done[job.seq] = job
        else:
            self._done_order.appendleft(job)

    def _unwrap(self, job: _Job) -> Results:
        outcome = job.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome

    def _raise_pending_error(self) -> None:
        failed = [(job.seq, job) for job in [*self._done.values(), *self._done_order]
                  if isinstance(job.outcome, BaseException) and not job.consumed]
        if failed:
            job = min(failed, key=lambda pair: pair[0])[1]
            job.consumed = True
            error = job.outcome
            assert isinstance(error, BaseException)
            raise error
        if self._errors:
            raise self._errors.popleft()

    def __repr__(self) -> str:
        return (f"<AsyncInferQueue jobs={len(self._requests)} free={len(self._free)} "
                f"in_flight={self._in_flight} submitted={self._submitted} "
                f"yielded={self._yielded}>")


def _attach(error: BaseException, job: _Job) -> BaseException:
    """Name the submission that caused ``error`` on the error itself."""
    try:
        error.inputs = job.inputs  # type: ignore[attr-defined]
        error.userdata = job.userdata  # type: ignore[attr-defined]
    except AttributeError:  # an exception type with __slots__
        return error
    if hasattr(error, "add_note"):
        error.add_note(f"in AsyncInferQueue submission #{job.seq} (userdata={job.userdata!r})")
    return error
