"""When a lone stream may hand a product to OpenBLAS's own threads instead of splitting it.

OpenBLAS's threads hand work over in microseconds (they spin), where our Python-thread split
(``parallel.py``) pays ~50 us per hand-off: on a quiet 2-core host a 12-70 MFLOP product runs
1.5-1.9x faster on two BLAS threads but only 1.0-1.6x faster split. On a busy host the same
spinning pool collapses (measured: 16 ms instead of 0.26 ms with two other busy processes).
So BLAS threads are used only while

* exactly one stream of this process is running (``stream_started``/``stream_finished``), and
  its plan does not cut work over our own pool too (convolutions, pools: measured, a spinning
  OpenBLAS worker left over from the classifier's Gemm slowed ResNet-50's next run 1.7x),
* the rest of the machine is quiet: at most ``cores - 2`` runnable tasks that are not ours
  (``/proc/loadavg``'s running count minus this process's running threads, sampled every
  20 ms: on 2 cores, none; two busy neighbours starve the pool, and a neighbour's spinning
  thread pool can be one of them); a running executor worker of another stream or plugin of
  this process (HETERO's other device) counts as a neighbour, and
* no recent BLAS-threaded product was pathologically slow (then not for a few seconds).

Elsewhere (not Linux, no OpenBLAS found) the answer is always "split".
"""

from __future__ import annotations

import ctypes
import os
import threading
import time

from ....runtime.executors import WORKER_TIDS

_SAMPLE_S = 0.02
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_PENALTY_S = 0.25
_lock = threading.Lock()
_local = threading.local()
_active = 0
_state = {"at": 0.0, "quiet": False, "banned_until": 0.0}
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


def can_set_threads() -> bool:
    """Whether OpenBLAS's thread count can be set here (:func:`set_blas_threads`)."""
    return _set_threads is not None


def set_blas_threads(count: int) -> None:
    """Set OpenBLAS's (process-wide) thread count, cheaply (a ctypes call, no library scan)."""
    if _set_threads is not None:
        _set_threads(count)


def stream_started(allow: bool = True) -> None:
    """A plan run of some stream of this process begins on the calling thread; ``allow=False``
    keeps its products off BLAS's threads (a plan whose own kernels cut work over our pool:
    OpenBLAS's workers spin for ~0.1 s after each call and would fight that pool)."""
    global _active
    _local.allow = allow
    with _lock:
        _active += 1


def stream_finished() -> None:
    """A plan run ends."""
    global _active
    with _lock:
        _active -= 1


def lone_stream() -> bool:
    """Whether exactly one plan run of this process is under way (the caller's)."""
    return _active == 1


def _others_running() -> int | None:
    """Runnable tasks on the machine right now that are not threads of this process, plus
    other executor workers of this process that are running (another plugin's stage, e.g.
    TEMPLATE's half of a HETERO pipeline, needs a core as much as a neighbour process does)."""
    me = threading.get_native_id()
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
        mine = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                    runnable = f.read().rsplit(b")", 1)[1].split()[0] == b"R"
            except OSError:
                continue  # the thread just exited
            if runnable and (int(tid) == me or int(tid) not in WORKER_TIDS):
                mine += 1
    except (OSError, ValueError, IndexError):
        return None
    return running - mine


def _quiet(now: float) -> bool:
    if now - _state["at"] < _SAMPLE_S:
        return bool(_state["quiet"])
    others = _others_running()
    _state["at"] = now
    _state["quiet"] = others is not None and others <= _CORES - 2
    return bool(_state["quiet"])


def blas_may_thread() -> bool:
    """Whether the calling (only running) stream may use OpenBLAS's threads right now."""
    if _set_threads is None or _active != 1 or not getattr(_local, "allow", True):
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
