"""FailureWatch: finds OpenVINO inferences that failed, whose callback never comes.

OpenVINO's Python binding calls an ``InferRequest``'s callback only when the inference
succeeded; a failure (a shape that only fails at run time, say) surfaces only from
``wait``/``wait_for`` on the request. An awaiting task would then wait forever. One daemon
thread per plugin looks, every ``interval`` seconds and only while inferences are in flight, at
those that started more than ``interval`` ago: ``wait_for(0)`` raises for a failed one, whose
stage is then ended with an :class:`~aioinfer.errors.InferenceError`. A good inference is left
to its callback. The thread exits after ``idle_timeout`` seconds with nothing in flight, and
is stopped at interpreter exit (before Python stops daemon threads: a thread stopped inside
OpenVINO's ``wait_for`` would abort the process).
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

Fail = Callable[[BaseException], None]

_watches: weakref.WeakSet[FailureWatch] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for watch in list(_watches):
        watch.stop()


class FailureWatch:
    """In-flight OpenVINO requests, checked for failures that no callback reports."""

    def __init__(self, name: str, interval: float = 0.05, idle_timeout: float = 2.0) -> None:
        self.name = name
        self.interval = interval
        self.idle_timeout = idle_timeout
        self._cond = threading.Condition()
        self._flight: dict[int, tuple[float, Any, Fail]] = {}
        self._thread: threading.Thread | None = None
        self._stopped = False
        _watches.add(self)

    def add(self, key: int, request: Any, fail: Fail) -> None:
        """Watch ``request`` (an ``openvino.InferRequest``) until :meth:`discard`."""
        with self._cond:
            self._flight[key] = (time.monotonic(), request, fail)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, daemon=True,
                                                name=f"aioinfer:{self.name}:watch")
                self._thread.start()

    def discard(self, key: int) -> bool:
        """Stop watching ``key``; ``False`` if it was not watched (already failed)."""
        with self._cond:
            return self._flight.pop(key, None) is not None

    @property
    def in_flight(self) -> int:
        return len(self._flight)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread (it is started again by the next :meth:`add`)."""
        with self._cond:
            self._stopped = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            self._stopped = False

    def _work(self) -> None:
        idle_since = time.monotonic()
        while True:
            with self._cond:
                idle = not self._flight and time.monotonic() - idle_since > self.idle_timeout
                if idle or self._stopped:
                    self._thread = None
                    return
                self._cond.wait(self.interval)
                now = time.monotonic()
                if self._flight:
                    idle_since = now
                old = [(k, req, fail) for k, (t, req, fail) in self._flight.items()
                       if now - t >= self.interval]
            for key, request, fail in old:
                try:
                    request.wait_for(0)
                except Exception as exc:  # the inference failed: its callback will not come
                    if self.discard(key):
                        fail(exc)
