"""Threads of a compiled model: cores shared out between its streams.

A stream gets ``threads // streams`` threads (INFERENCE_NUM_THREADS, default every core), which
its big products use by splitting into row blocks (``kernels/parallel.py``). NumPy's BLAS
(OpenBLAS, MKL or BLIS) itself is set to one thread through threadpoolctl: its process-wide,
busy-waiting pool would oversubscribe the cores with several streams, and it loses 3-6x on a
machine that other processes keep busy (measured on a 2-core host at load 4), where the split
products never fall below the one-thread speed.
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
