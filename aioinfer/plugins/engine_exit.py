"""Interpreter exit with engine inferences in flight (OpenVINO, onnxruntime).

An engine's thread calls back into Python when a started inference ends (OpenVINO's request
callback, onnxruntime's ``run_async`` callback), and a thread in a sync ``infer``/``run``
returns into Python when it ends. Once the interpreter has begun to finalize, a thread that
asks for the GIL is ended by a forced unwind, which the engines' C++ frames catch, and the
process aborts ("FATAL: exception not rethrown", "terminate called without an active
exception"). The engines alone do the same: OpenVINO's ``AsyncInferQueue`` with a callback,
left running at exit, aborted 3 exits in 5 here; a daemon thread in a sync ``infer`` 5 in 5.

So the engine plugins count every inference they hand to an engine in :data:`GUARD`; at exit
(``atexit`` runs before finalization, after non-daemon threads were joined) the guard refuses
new inferences, cancels those in flight and waits, at most ``timeout`` seconds, until no
engine thread will call into Python again.
"""

from __future__ import annotations

import atexit
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import RequestError

Cancel = Callable[[float], bool]
"""Stops one inference early, given seconds left; ``True`` when it is over on return (no
engine thread will call into Python for it), ``False`` when its thread or callback will
still :meth:`ExitGuard.leave`."""


class ExitGuard:
    """The inferences inside an engine, and the refusal of new ones at exit."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._inside: dict[int, Cancel] = {}
        self._tokens = itertools.count()
        self.closing = False

    def enter(self, cancel: Cancel) -> int:
        """Count an inference about to start and return its token;
        :class:`~aioinfer.errors.RequestError` once the interpreter is exiting."""
        with self._cond:
            if self.closing:
                raise RequestError("inference refused: the interpreter is exiting")
            key = next(self._tokens)
            self._inside[key] = cancel
            return key

    def leave(self, key: int) -> None:
        """The inference ``key`` is over: no engine thread will call into Python for it."""
        with self._cond:
            if self._inside.pop(key, None) is not None and self.closing:
                self._cond.notify_all()

    @contextmanager
    def calling(self) -> Iterator[None]:
        """Count this thread while it is in an engine call that returns into Python (a
        ``start_async``/``run_async`` that hands an inference over): the inference may be
        cancelled and over while the thread is still inside the call (measured: OpenVINO's
        ``start_async`` waiting for a stream), and it must be back before finalization."""
        key = self.enter(_returns)
        try:
            yield
        finally:
            self.leave(key)

    @property
    def inside(self) -> int:
        return len(self._inside)

    def close(self, timeout: float = 10.0) -> bool:
        """Refuse new inferences, cancel those in flight and wait until they are over;
        ``False`` if some were still running after ``timeout`` seconds."""
        with self._cond:
            self.closing = True
            inside = list(self._inside.items())
        deadline = time.monotonic() + timeout
        for key, cancel in inside:
            try:
                over = cancel(max(0.0, deadline - time.monotonic()))
            except Exception:  # the engine refused the cancel: wait for the inference
                over = False
            if over:
                self.leave(key)
        with self._cond:
            return self._cond.wait_for(lambda: not self._inside,
                                       max(0.0, deadline - time.monotonic()))


def _returns(_timeout: float) -> bool:
    """The thread in the call leaves the guard when the call returns."""
    return False


GUARD = ExitGuard()
atexit.register(GUARD.close)
