"""One timer thread per process for every BATCH model's partial-batch deadlines.

A request waiting for its batch to fill holds no thread: it is a deferred stage. What ends
the wait early is either the batch filling up (on the thread that submits the last member)
or its deadline, which this single daemon thread fires (it sleeps until the earliest deadline
and exits after a few idle seconds; it is started again on demand).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

_lock = threading.Condition()
_heap: list[tuple[float, int, Callable[[], None]]] = []
_seq = itertools.count()
_thread: threading.Thread | None = None
_IDLE_EXIT = 5.0


def call_at(deadline: float, fn: Callable[[], None]) -> None:
    """Call ``fn()`` on the timer thread at ``deadline`` (``time.monotonic()`` seconds)."""
    global _thread
    with _lock:
        heapq.heappush(_heap, (deadline, next(_seq), fn))
        if _thread is None:
            _thread = threading.Thread(target=_work, name="aioinfer:batch-timer", daemon=True)
            _thread.start()
        _lock.notify()


def cancel(owner: object) -> None:
    """Forget the deadlines whose ``fn`` is a bound method of ``owner`` (a released model's:
    the thread then exits after its idle time instead of waiting for them)."""
    with _lock:
        _heap[:] = [entry for entry in _heap if getattr(entry[2], "__self__", None) is not owner]
        heapq.heapify(_heap)
        _lock.notify()


def _work() -> None:
    global _thread
    while True:
        with _lock:
            while True:
                now = time.monotonic()
                if _heap and _heap[0][0] <= now:
                    fn = heapq.heappop(_heap)[2]
                    break
                wait = _heap[0][0] - now if _heap else _IDLE_EXIT
                if not _lock.wait(wait) and not _heap:
                    _thread = None
                    return
        try:
            fn()
        except Exception:  # a deadline's work reports its own errors to its runs
            pass
