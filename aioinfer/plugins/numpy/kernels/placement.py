"""Keep the intra-op helper threads and the thread they help on different cores.

After an idle spell Linux wakes a thread on its waker's CPU (wake-affine): the thread running
the plan and its helper then share one core until the load balancer parts them. On this
project's 2-core host the first ResNet-50 inference after 0.2 s idle took 92 ms instead of 70
(every kernel after the first few at one-core speed), and SqueezeNet's inferences after idle
13-14 ms instead of 10-11. Moving only the helpers was not enough (the runner, woken by a
helper at each join, followed it). ONNX Runtime and OpenVINO pin their pool threads to cores;
a library must not pin its caller's thread for good, so :func:`pinned_run` holds the runner
on its current CPU for one plan run (its own mask is restored after) and moves the helpers
(our own threads) to the other allowed CPUs when that CPU changed. Where ``sched_getcpu`` or
``sched_setaffinity`` is missing (not Linux), nothing is done.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Callable, Iterator

_lock = threading.Lock()
_helpers: dict[int, list[int]] = {}  # pool key -> native ids of its threads
_placed: dict[int, tuple[int, int]] = {}  # pool key -> (caller's CPU, helpers) last placed for


def _find_getcpu() -> Callable[[], int] | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sched_getcpu
    except (OSError, AttributeError):
        return None
    fn.restype, fn.argtypes = ctypes.c_int, []
    return fn


_getcpu = _find_getcpu()
_allowed = frozenset(os.sched_getaffinity(0)) if _getcpu is not None else frozenset()


def register_helper(key: int) -> None:
    """Run on each new helper thread of pool ``key`` (its ``ThreadPoolExecutor`` initializer)."""
    with _lock:
        _helpers.setdefault(key, []).append(threading.get_native_id())


@contextlib.contextmanager
def pinned_run(key: int) -> Iterator[None]:
    """Around one plan run on the calling thread with the helpers of pool ``key``: the caller
    stays on its current CPU (its own mask is restored after) and the helpers run on the
    other allowed CPUs, so neither wakes up on the other's core."""
    if _getcpu is None or len(_allowed) < 2 or not _helpers.get(key):
        yield
        return
    cpu = _getcpu()
    if cpu < 0:
        yield
        return
    try:
        mask = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
    except OSError:
        yield
        return
    try:
        _place_helpers(key, cpu)
        yield
    finally:
        os.sched_setaffinity(0, mask)


def _place_helpers(key: int, cpu: int) -> None:
    tids = _helpers.get(key, [])
    if _placed.get(key) == (cpu, len(tids)):
        return
    others = _allowed - {cpu} or _allowed
    with _lock:
        for tid in list(tids):
            try:
                os.sched_setaffinity(tid, others)
            except OSError:  # the thread is gone, or the mask is not allowed: leave it be
                continue
        _placed[key] = (cpu, len(tids))
