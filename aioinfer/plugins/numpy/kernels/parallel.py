"""Intra-op parallelism for the big products: one GEMM split in blocks over a few threads.

BLAS runs single-threaded (see ``plugins/numpy/threads.py``) and a large product is cut into
``intra_threads()`` row or column blocks, each a single-threaded BLAS call on its own Python thread
(NumPy releases the GIL in matmul). Unlike a spinning BLAS pool, blocked joins never fight
other processes or other streams for the cores.

Whether a cut pays is measured, not guessed: below a per-kind floor of work a job always runs
on the calling thread, and above it each call site (block function, size, work, threads) is
timed both ways for its first few calls and then keeps the faster way (``_Calibration``). On a
quiet 2-core host the hand-off, the join and the GIL held between NumPy calls cost ~0.25 ms per
cut job, so only jobs of ~0.5 ms or more gain, and pools of 1.7M window elements ran 1.1-1.5x
slower cut while 25M-MAC convolutions were anywhere from 0.97x to 1.15x faster.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..passes.weight_layout import SWAP_MAX_ROWS, SWAP_MIN_WEIGHT
from . import blas_mode, placement
from .linalg import blas_matmul

_BLAS_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
_MIN_FLOPS = 20_000_000  # below this a hand-off to another thread costs more than it saves
_MIN_BLAS_FLOPS = 2_000_000  # ... to OpenBLAS's own (spinning) threads, when allowed
_TRIALS = 3  # timed calls each way before a call site settles on cutting or not
_GAIN = 0.95  # cutting must save 5% of the one-thread time to be kept
_RECHECK = 2048  # calls after which a settled call site is timed again (load changes)
_MAX_SITES = 4096  # call sites remembered; past this, new ones trust the floor alone
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
            pool = _pools[count] = ThreadPoolExecutor(
                count - 1, thread_name_prefix="aioinfer-gemm",
                initializer=placement.register_helper, initargs=(count,))
        return pool


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b)``, split by rows of ``a`` over the intra-op threads when large.

    A few-row product by a large column-major matrix ``b`` (``passes/weight_layout.py``) runs
    swapped, ``(b^T a^T)^T``: its result is then column-major too, which the next such
    product reads as a row-major ``a^T`` at no cost.
    """
    if (out is None and b.ndim == 2 and a.ndim >= 2 and b.size >= SWAP_MIN_WEIGHT
            and b.flags.f_contiguous and not b.flags.c_contiguous and a.dtype == b.dtype
            and a.size // max(1, a.shape[-1]) <= SWAP_MAX_ROWS):
        rows = a.reshape(-1, a.shape[-1])
        return _matmul(b.T, rows.T, None).T.reshape(*a.shape[:-1], b.shape[1])
    return _matmul(a, b, out)


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None) -> np.ndarray:
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

    def block(lo: int, hi: int) -> None:
        if by_cols:
            np.matmul(a, b[..., lo:hi], out=out[..., lo:hi])
        else:
            np.matmul(a[..., lo:hi, :], b, out=out[..., lo:hi, :])

    run_blocks(block, size, flops, 0.0)
    return out


_PROBES = ((50, 64, 40), (30, 96, 52))  # (rows, inner, cols): small, odd cuts
_THREAD_PROBE = (197, 192, 576)  # large enough for OpenBLAS to use its threads


def exact_splits() -> bool:
    """Whether this process's BLAS computes a product cut in blocks, by rows or by columns,
    or on two of OpenBLAS's threads, to the same bits as uncut (probed once, on a few
    products of the sizes the plans cut).

    Not every BLAS does: OpenBLAS 0.3.31 on an AMD EPYC (its Haswell kernels) rounds rows 6-11
    of every 12 differently from rows 0-5 (identical rows of ``a`` give two different rows of
    the product), so where a block starts changes the bits, and so does its own threading.
    There, a call site's choice to cut or not must not depend on timing or on the host's load
    (``run_blocks`` and ``blas_threaded`` then decide by size alone): one compiled model
    gives the same bytes run after run. Probed at import, before any stream runs: the probe
    sets OpenBLAS's process-wide thread count for a moment."""
    return _EXACT


def _probe_splits() -> bool:
    rng = np.random.default_rng(0)

    def pair(rows: int, inner: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        return (rng.standard_normal((rows, inner)).astype(np.float32),
                rng.standard_normal((inner, cols)).astype(np.float32))

    for rows, inner, cols in _PROBES:
        a, b = pair(rows, inner, cols)
        whole = np.matmul(a, b)
        by_rows = np.concatenate([np.matmul(a[: rows // 2], b), np.matmul(a[rows // 2:], b)])
        by_cols = np.concatenate([np.matmul(a, b[:, : cols // 2]),
                                  np.matmul(a, b[:, cols // 2:])], axis=1)
        if not (np.array_equal(whole, by_rows) and np.array_equal(whole, by_cols)):
            return False
    if not blas_mode.can_set_threads():
        return True
    a, b = pair(*_THREAD_PROBE)
    whole = np.matmul(a, b)
    blas_mode.set_blas_threads(2)
    try:
        threaded = np.matmul(a, b)
    finally:
        blas_mode.set_blas_threads(1)
    return bool(np.array_equal(whole, threaded))


def blas_threaded(a: np.ndarray, b: np.ndarray, out: np.ndarray | None,
                  flops: float) -> np.ndarray | None:
    """``np.matmul(a, b, out=out)`` on OpenBLAS's own threads when ``blas_mode`` allows it
    (a lone stream on a quiet machine, and a BLAS whose threads give the bits of one:
    :func:`exact_splits`), else ``None`` (and nothing is computed)."""
    threads = intra_threads()
    if threads < 2 or not blas_mode.blas_may_thread() or not exact_splits():
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


class _Calibration:
    """Timings of one call site cut and uncut; ``cut`` is the settled choice (None: timing)."""

    __slots__ = ("calls", "cut", "times")

    def __init__(self) -> None:
        self.cut: bool | None = None
        self.calls = 0
        self.times: dict[bool, list[float]] = {True: [], False: []}

    def choose(self) -> bool:
        """Cut this call? While timing, alternate (cut first, so the cut path runs at once)."""
        self.calls += 1
        if self.cut is not None and self.calls % _RECHECK:
            return self.cut
        if self.cut is not None:  # time both ways again
            self.cut, self.times = None, {True: [], False: []}
        return len(self.times[True]) <= len(self.times[False])

    def record(self, cut: bool, seconds: float) -> None:
        """One timed call; settle once both ways have ``_TRIALS`` timings (best of each)."""
        if self.cut is not None:
            return
        self.times[cut].append(seconds)
        if min(len(t) for t in self.times.values()) >= _TRIALS:
            self.cut = min(self.times[True]) < _GAIN * min(self.times[False])


_sites: dict[tuple, _Calibration] = {}


def _calibration(fn: Callable[[int, int], None], size: int, work: float,
                 threads: int) -> _Calibration | None:
    """The call site's timings (None when too many sites are remembered already)."""
    key = (getattr(fn, "__code__", fn), size, work, threads)
    site = _sites.get(key)
    if site is None and len(_sites) < _MAX_SITES:
        site = _sites.setdefault(key, _Calibration())
    return site


def split_decisions() -> dict[tuple, bool | None]:
    """Each call site's settled choice (True: cut), for inspection and tests."""
    return {key: site.cut for key, site in list(_sites.items())}


def run_blocks(fn: Callable[[int, int], None], size: int, work: float,
               min_work: float | None = None, *, exact: bool = False) -> None:
    """``fn(lo, hi)`` over ``range(size)`` cut into one block per intra-op thread.

    ``work`` estimates the whole job (in multiply-adds or elements touched, against
    ``min_work``, by default ``_MIN_FLOPS``): small jobs, or ``size`` too small to cut, run as
    one block on this thread; larger ones are cut only where timing showed it pays. Where a
    cut may change the bits (``fn`` runs products, and :func:`exact_splits` is false), they
    are always cut instead: ``exact=True`` says each output of ``fn`` is computed alike in
    any block (elementwise and per-row kernels), so timing may choose.
    ``fn`` must write disjoint outputs per block and release the GIL for its bulk (NumPy
    copies, ufuncs and BLAS calls do).
    """
    threads = min(intra_threads(), size)
    if threads < 2 or work < (_MIN_FLOPS if min_work is None else min_work):
        fn(0, size)
        return
    # Where a cut changes the bits (exact_splits), timing must not choose: cut by size alone.
    site = _calibration(fn, size, work, threads) if exact or exact_splits() else None
    cut = True if site is None else site.choose()
    start = time.perf_counter()
    if cut:
        _run_bounds(fn, [size * k // threads for k in range(threads + 1)])
    else:
        fn(0, size)
    if site is not None:
        site.record(cut, time.perf_counter() - start)


_EXACT = _probe_splits()
