"""Executors: named pools of worker threads that run request stages.

A device's executor has one worker per stream. ``run_sync`` runs a stage inline on the calling
thread (the synchronous path); ``await run(fn)`` runs it on a worker without blocking the event
loop, under asyncio, uvloop or trio. A cancelled ``run`` returns only once the stage has
finished (anyio's ``abandon_on_cancel=False``), so the request stays consistent and reusable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

T = TypeVar("T")


class Executor:
    """A bounded set of workers for one device (or the host)."""

    def __init__(self, name: str, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"executor {name!r}: workers must be >= 1, got {workers}")
        self.name = name
        self._workers = workers
        self._limiters: dict[Any, anyio.CapacityLimiter] = {}
        self._lock = threading.Lock()

    @property
    def workers(self) -> int:
        return self._workers

    def run_sync(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the calling thread."""
        return fn()

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on one of this executor's workers and await its result."""
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter())

    def _limiter(self) -> anyio.CapacityLimiter:
        # A limiter belongs to one event loop; keep one per running loop.
        token = anyio.lowlevel.current_token()
        with self._lock:
            limiter = self._limiters.get(token)
            if limiter is None:
                if len(self._limiters) > 16:
                    self._limiters.clear()
                limiter = self._limiters[token] = anyio.CapacityLimiter(self._workers)
            return limiter

    def __repr__(self) -> str:
        return f"<Executor {self.name!r} workers={self._workers}>"


HOST = Executor("host", workers=4)
"""Executor for host-side stages (input conversion, output collection)."""
