"""Intra-op parallelism for the big products: one GEMM split in blocks over a few threads.

BLAS runs single-threaded (see ``plugins/numpy/threads.py``) and a large product is cut into
``intra_threads()`` row or column blocks, each a single-threaded BLAS call on its own Python thread
(NumPy releases the GIL in matmul). Unlike a spinning BLAS pool, blocked joins never fight
other processes or other streams for the cores, so the worst case is the one-thread speed.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import blas_mode
from .linalg import blas_matmul

_BLAS_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
_MIN_FLOPS = 20_000_000  # below this a hand-off to another thread costs more than it saves
_MIN_BLAS_FLOPS = 2_000_000  # ... to OpenBLAS's own (spinning) threads, when allowed
_state = threading.local()
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def set_intra_threads(count: int) -> None:
    """Threads the products of the calling thread may use (1 = no splitting)."""
    _state.threads = max(1, int(count))


def intra_threads() -> int:
    """Threads the products of the calling thread may use (1 unless set)."""
    return getattr(_state, "threads", 1)


def _pool(count: int) -> ThreadPoolExecutor:
    with _pools_lock:
        pool = _pools.get(count)
        if pool is None:
            pool = _pools[count] = ThreadPoolExecutor(count - 1, thread_name_prefix="aioinfer-gemm")
        return pool


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b)``, split by rows of ``a`` over the intra-op threads when large."""
    threads = intra_threads()
    if a.dtype != b.dtype or a.dtype not in _BLAS_TYPES:
        y = blas_matmul(a, b)  # narrow floats through float32, integers as they are
        if out is None:
            return y
        np.copyto(out, y)
        return out
    if a.ndim < 2 or b.ndim < 2 or threads < 2:
        return np.matmul(a, b, out=out)
    rows, inner, cols = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    flops = 2 * rows * inner * cols * math.prod(batch)
    if flops >= _MIN_BLAS_FLOPS:
        done = blas_threaded(a, b, out, flops)
        if done is not None:
            return done
    if flops < _MIN_FLOPS or max(rows, cols) < 2 * threads:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((*batch, rows, cols), dtype=np.result_type(a, b))
    # Each block reads the whole of the other operand: cut the larger side.
    by_cols = cols > rows
    size = cols if by_cols else rows
    bounds = [size * k // threads for k in range(threads + 1)]

    def block(lo: int, hi: int) -> None:
        if by_cols:
            np.matmul(a, b[..., lo:hi], out=out[..., lo:hi])
        else:
            np.matmul(a[..., lo:hi, :], b, out=out[..., lo:hi, :])

    _run_bounds(block, bounds)
    return out


def blas_threaded(a: np.ndarray, b: np.ndarray, out: np.ndarray | None,
                  flops: float) -> np.ndarray | None:
    """``np.matmul(a, b, out=out)`` on OpenBLAS's own threads when ``blas_mode`` allows it
    (a lone stream on a quiet machine), else ``None`` (and nothing is computed)."""
    threads = intra_threads()
    if threads < 2 or not blas_mode.blas_may_thread():
        return None
    blas_mode.set_blas_threads(threads)
    start = time.perf_counter()
    try:
        return np.matmul(a, b, out=out)
    finally:
        blas_mode.set_blas_threads(1)
        blas_mode.check(time.perf_counter() - start, flops)


def _run_bounds(fn: Callable[[int, int], None], bounds: list[int]) -> None:
    """``fn(lo, hi)`` for each consecutive pair of ``bounds``; the first on this thread."""
    pool = _pool(len(bounds) - 1)
    futures = [pool.submit(fn, lo, hi) for lo, hi in zip(bounds[1:-1], bounds[2:], strict=True)]
    try:
        fn(bounds[0], bounds[1])
    finally:
        for f in futures:
            f.result()


def run_blocks(fn: Callable[[int, int], None], size: int, work: float,
               min_work: float = _MIN_FLOPS) -> None:
    """``fn(lo, hi)`` over ``range(size)`` cut into one block per intra-op thread.

    ``work`` estimates the whole job (in multiply-adds or elements touched, against
    ``min_work``): small jobs, or ``size`` too small to cut, run as one block on this thread.
    ``fn`` must write disjoint outputs per block and release the GIL for its bulk (NumPy
    copies, ufuncs and BLAS calls do).
    """
    threads = min(intra_threads(), size)
    if threads < 2 or work < min_work:
        fn(0, size)
        return
    _run_bounds(fn, [size * k // threads for k in range(threads + 1)])
