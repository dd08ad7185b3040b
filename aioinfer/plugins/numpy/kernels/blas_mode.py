"""When a lone stream may hand a product to OpenBLAS's own threads instead of splitting it.

OpenBLAS's threads hand work over in microseconds (they spin), where our Python-thread split
(``parallel.py``) pays ~50 us per hand-off: on a quiet 2-core host a 12-70 MFLOP product runs
1.5-1.9x faster on two BLAS threads but only 1.0-1.6x faster split. On a busy host the same
spinning pool collapses (measured: 16 ms instead of 0.26 ms with two other busy processes).
So BLAS threads are used only while

* exactly one stream of this process is running (``stream_started``/``stream_finished``),
* the rest of the machine is quiet: other processes used less than ``cores - 1.5`` cores over
  the last ~0.25 s (``/proc/stat`` minus this process's own ticks), and
* no recent BLAS-threaded product was pathologically slow (then not for a few seconds).

Elsewhere (not Linux, no OpenBLAS found) the answer is always "split".
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

_SAMPLE_S = 0.25
_PENALTY_S = 1.0
_lock = threading.Lock()
_active = 0
_state = {"at": 0.0, "busy": 0, "mine": 0, "quiet": False, "banned_until": 0.0}
_set_threads: ctypes._CFuncPtr | None = None  # type: ignore[name-defined]


def _find_setter() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        import threadpoolctl
    except ImportError:
        return None
    for lib in threadpoolctl.ThreadpoolController().select(user_api="blas").lib_controllers:
        if lib.internal_api != "openblas" or getattr(lib, "threading_layer", "") == "openmp":
            continue
        for prefix in ("", "scipy_"):
            for suffix in ("", "64_", "_64"):
                fn = getattr(lib.dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if fn is not None:
                    return fn
    return None


def set_blas_threads(count: int) -> None:
    """Set OpenBLAS's (process-wide) thread count, cheaply (a ctypes call, no library scan)."""
    if _set_threads is not None:
        _set_threads(count)


def stream_started() -> None:
    """A plan run of some stream of this process begins."""
    global _active
    with _lock:
        _active += 1


def stream_finished() -> None:
    """A plan run ends."""
    global _active
    with _lock:
        _active -= 1


def _ticks() -> tuple[int, int] | None:
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()[1:]
        with open("/proc/self/stat", "rb") as f:
            own = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    values = [int(v) for v in fields]
    busy = sum(values) - values[3] - (values[4] if len(values) > 4 else 0)  # minus idle, iowait
    return busy, int(own[11]) + int(own[12])  # utime + stime


def _quiet(now: float) -> bool:
    if now - _state["at"] < _SAMPLE_S:
        return bool(_state["quiet"])
    ticks = _ticks()
    if ticks is None:
        return False
    busy, mine = ticks
    elapsed = (now - _state["at"]) * os.sysconf("SC_CLK_TCK")
    others = (busy - _state["busy"] - (mine - _state["mine"])) / max(elapsed, 1e-9)
    fresh = now - _state["at"] < 4 * _SAMPLE_S  # an old baseline says nothing about now
    _state.update(at=now, busy=busy, mine=mine,
                  quiet=fresh and others < len(os.sched_getaffinity(0)) - 1.5)
    return bool(_state["quiet"])


def blas_may_thread() -> bool:
    """Whether the calling (only running) stream may use OpenBLAS's threads right now."""
    if _set_threads is None or _active != 1:
        return False
    now = time.monotonic()
    if now < _state["banned_until"]:
        return False
    with _lock:
        return _quiet(now)


def check(elapsed: float, flops: float) -> None:
    """After a BLAS-threaded product: if it was far slower than any sane speed, stop using
    BLAS threads for a few seconds (the machine got busy between two load samples)."""
    if elapsed > 5e-3 + 4 * flops / 20e9:  # a starved spinning pool costs ~16 ms a call
        _state["banned_until"] = time.monotonic() + _PENALTY_S


_set_threads = _find_setter()
if _set_threads is not None:
    _set_threads.argtypes = [ctypes.c_int]
    _set_threads.restype = None
