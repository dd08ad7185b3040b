"""The intra-op helpers and the thread they help run on different cores (kernels/placement)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from aioinfer.plugins.numpy.kernels import parallel, placement

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2
    or placement._getcpu is None, reason="needs Linux CPU affinity and two CPUs")


def _helper_masks(key: int) -> list[set[int]]:
    return [os.sched_getaffinity(tid) for tid in placement._helpers.get(key, [])]


def _run_on_thread(fn) -> None:
    """Run ``fn`` on a fresh thread (affinity changes stay off the test runner's thread)."""
    errors: list[BaseException] = []

    def body() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    if errors:
        raise errors[0]


def test_a_run_holds_its_thread_and_moves_the_helpers_elsewhere() -> None:
    parallel._pool(2).submit(lambda: None).result()  # the helper exists
    seen: dict[str, object] = {}

    def body() -> None:
        before = os.sched_getaffinity(0)
        with placement.pinned_run(2):
            seen["inside"] = os.sched_getaffinity(0)
            seen["cpu"] = placement._getcpu()
            seen["helpers"] = _helper_masks(2)
        seen["restored"] = os.sched_getaffinity(0) == before

    _run_on_thread(body)
    assert seen["inside"] == {seen["cpu"]}
    assert all(seen["cpu"] not in mask and mask for mask in seen["helpers"])
    assert seen["restored"] is True


def test_the_mask_is_restored_when_the_run_fails() -> None:
    parallel._pool(2).submit(lambda: None).result()

    def body() -> None:
        before = os.sched_getaffinity(0)
        with pytest.raises(ZeroDivisionError), placement.pinned_run(2):
            _ = 1 / 0
        assert os.sched_getaffinity(0) == before

    _run_on_thread(body)


def test_a_pool_without_helpers_changes_nothing() -> None:
    def body() -> None:
        before = os.sched_getaffinity(0)
        with placement.pinned_run(0):
            assert os.sched_getaffinity(0) == before

    _run_on_thread(body)


def test_a_latency_plan_cut_over_the_pool_still_computes_right() -> None:
    # a cut product on two threads inside a pinned run gives the plain product
    a, b = np.ones((64, 256), np.float32), np.ones((256, 4096), np.float32)

    def body() -> None:
        parallel.set_intra_threads(2)
        with placement.pinned_run(2):
            out = np.empty((64, 4096), np.float32)
            parallel._run_bounds(lambda lo, hi: np.matmul(a, b[:, lo:hi], out=out[:, lo:hi]),
                                 [0, 2048, 4096])
        np.testing.assert_array_equal(out, 256.0)

    _run_on_thread(body)
