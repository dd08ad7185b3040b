"""Completing awaiting tasks from worker threads, many at a time.

A worker that finishes a task posts it to the completion *port* of the event loop that awaits
it. A port is a queue plus one wake-up: only the first post after a drain wakes the loop
(``loop.call_soon_threadsafe`` on asyncio/uvloop, ``TrioToken.run_sync_soon`` on trio), and the
drain then completes every task posted meanwhile. Under load this completes many requests per
loop wake-up instead of paying one thread hop each.

:func:`await_task` is the one primitive the runtime awaits: it starts work that calls
``notify()`` from another thread when done, and returns once ``notify`` has been called. If
the awaiting task is cancelled it calls ``on_cancel()`` (to ask the work to stop early), still
waits for ``notify`` (the work is never abandoned: buffers and workers stay consistent) and then
re-raises the cancellation.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

Start = Callable[[Callable[[], None]], None]

_get_running_loop = asyncio._get_running_loop


def _library_name() -> str | None:
    """The async library sniffio reports (trio sets it; unset means asyncio)."""
    return _sniffio_thread.name or _sniffio_cvar.get()


try:  # trio depends on sniffio, so without sniffio trio cannot be running
    import sniffio

    _sniffio_cvar = sniffio.current_async_library_cvar
    _sniffio_thread = sniffio.thread_local
except ImportError:  # pragma: no cover - depends on the environment

    def _library_name() -> str | None:
        return None


class _Port:
    """A per-loop queue of finished items, drained on the loop thread."""

    __slots__ = ("_items", "_scheduled", "_wake", "__weakref__")

    def __init__(self, wake: Callable[[Callable[[], None]], Any]) -> None:
        self._items: deque[Any] = deque()
        self._scheduled = False
        self._wake = wake

    def post(self, item: Any) -> None:
        """Called on any thread: queue ``item`` and wake the loop if no drain is pending."""
        # Append before reading the flag, and the drain clears the flag before popping: a
        # post either sees a pending drain that will pop its item, or schedules a new one.
        self._items.append(item)
        if not self._scheduled:
            self._scheduled = True
            try:
                self._wake(self._drain)
            except Exception:  # the loop is closed: nobody is left to deliver to
                self._scheduled = False

    def _drain(self) -> None:
        self._scheduled = False
        popleft = self._items.popleft
        while True:
            try:
                item = popleft()
            except IndexError:
                return
            item.deliver()


_asyncio_ports: weakref.WeakKeyDictionary[Any, _Port] = weakref.WeakKeyDictionary()
_trio_ports: weakref.WeakKeyDictionary[Any, _Port] = weakref.WeakKeyDictionary()
_ports_lock = threading.Lock()
_last: tuple[Any, _Port | None] = (None, None)


def _asyncio_port(loop: asyncio.AbstractEventLoop) -> _Port:
    global _last
    last_loop, port = _last
    if last_loop is loop and port is not None:
        return port
    with _ports_lock:
        port = _asyncio_ports.get(loop)
        if port is None:
            port = _asyncio_ports[loop] = _Port(loop.call_soon_threadsafe)
    _last = (loop, port)
    return port


def _trio_port(token: Any) -> _Port:
    with _ports_lock:
        port = _trio_ports.get(token)
        if port is None:
            port = _trio_ports[token] = _Port(token.run_sync_soon)
    return port


class _AsyncioWaiter:
    __slots__ = ("future", "delivered")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future
        self.delivered = False

    def deliver(self) -> None:
        self.delivered = True
        if not self.future.done():
            self.future.set_result(None)


def current_port() -> _Port:
    """The completion port of the running event loop (asyncio, uvloop or trio).

    Post an object with a ``deliver()`` method from any thread; ``deliver`` runs on the loop.
    """
    loop = _get_running_loop()
    library = _library_name()
    if loop is not None and (library is None or library == "asyncio"):
        return _asyncio_port(loop)
    import trio

    return _trio_port(trio.lowlevel.current_trio_token())


async def await_task(start: Start, on_cancel: Callable[[], None] | None = None) -> None:
    """Call ``start(notify)`` and wait, without blocking the loop, until ``notify()`` is called.

    ``notify`` may be called from any thread. On cancellation: ``on_cancel()``, wait for
    ``notify`` anyway (shielded), then re-raise.
    """
    loop = _get_running_loop()
    # sniffio names trio (also trio in guest mode on an asyncio loop); unnamed means asyncio.
    library = _library_name()
    if loop is not None and (library is None or library == "asyncio"):
        await _await_asyncio(loop, start, on_cancel)
    else:
        await _await_trio(start, on_cancel)


async def _await_asyncio(
    loop: asyncio.AbstractEventLoop, start: Start, on_cancel: Callable[[], None] | None
) -> None:
    port = _asyncio_port(loop)
    waiter = _AsyncioWaiter(loop.create_future())
    start(lambda: port.post(waiter))
    try:
        await waiter.future
    except asyncio.CancelledError:
        if not waiter.delivered:
            if on_cancel is not None:
                on_cancel()
            while not waiter.delivered:
                waiter.future = loop.create_future()
                try:
                    await waiter.future
                except asyncio.CancelledError:
                    continue  # cancelled again: keep waiting, one CancelledError is raised
        raise


class _TrioWaiter:
    __slots__ = ("task",)

    def __init__(self, task: Any) -> None:
        self.task = task

    def deliver(self) -> None:
        import trio

        trio.lowlevel.reschedule(self.task)


async def _await_trio(start: Start, on_cancel: Callable[[], None] | None) -> None:
    import trio

    port = _trio_port(trio.lowlevel.current_trio_token())
    waiter = _TrioWaiter(trio.lowlevel.current_task())
    cancelled = False

    def abort(_raise_cancel: Any) -> Any:
        nonlocal cancelled
        cancelled = True
        if on_cancel is not None:
            on_cancel()
        return trio.lowlevel.Abort.FAILED  # keep waiting until the work has stopped

    start(lambda: port.post(waiter))
    await trio.lowlevel.wait_task_rescheduled(abort)
    if cancelled:
        await trio.lowlevel.checkpoint()  # raises Cancelled while the scope is cancelled
