"""BLAS threads shared out between the streams of a compiled model.

NumPy's BLAS (OpenBLAS, MKL or BLIS) keeps one process-wide thread count. With ``streams``
requests running at once, each BLAS call gets ``threads // streams`` threads, so the streams
together use the ``threads`` asked for (INFERENCE_NUM_THREADS, default: every core) instead of
oversubscribing the cores, which a busy-waiting BLAS pool turns into a large slowdown.
threadpoolctl finds the loaded BLAS library and sets its count; without it the count stays.
"""

from __future__ import annotations

import os

import numpy as np  # noqa: F401 - BLAS must be loaded before threadpoolctl looks for it


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def per_stream(threads: int, streams: int) -> int:
    """BLAS threads per stream: ``threads`` (0 = every core) shared by ``streams``."""
    total = threads or cores()
    return max(1, total // max(1, streams))


def set_blas_threads(count: int) -> bool:
    """Set the BLAS thread count of this process; ``False`` if it cannot be set here."""
    try:
        import threadpoolctl
    except ImportError:
        return False
    threadpoolctl.threadpool_limits(limits=count, user_api="blas")
    return True


def blas_threads() -> int | None:
    """The BLAS thread count now in effect, if it can be read."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    infos = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    return int(infos[0]["num_threads"]) if infos else None
