"""CompiledModel.release() and ``with compiled:``: worker threads stop deterministically."""

from __future__ import annotations

import os
import sys
import threading

import numpy as np
import pytest

import aioinfer
from aioinfer.errors import RequestError

from .models import add_model, gate_request, matmul_chain, matmul_chain_reference


def _workers(compiled: aioinfer.CompiledModel) -> list[threading.Thread]:
    prefix = f"aioinfer:{compiled.executor.name}:{compiled.executor._pool.serial}."
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def _pair(k: float) -> list[np.ndarray]:
    return [np.full((1, 16), k, np.float32), np.zeros((1, 16), np.float32)]


@pytest.mark.anyio
async def test_release_joins_the_workers_and_refuses_new_work():
    compiled = aioinfer.Core().compile_model(add_model(), "NUMPY",
                                             {"PERFORMANCE_HINT": "THROUGHPUT"})
    requests = [compiled.create_infer_request() for _ in range(4)]
    for k, request in enumerate(requests):
        assert (await request.infer_async(_pair(float(k))))["y"][0, 0] == k
    assert _workers(compiled), "no worker thread was started"
    compiled.release()
    assert _workers(compiled) == [] and compiled.executor.alive == 0 and compiled.released
    with pytest.raises(RequestError, match="released"):
        await requests[0].infer_async(_pair(1.0))
    with pytest.raises(RequestError, match="released"):
        requests[1].infer(_pair(1.0))
    with pytest.raises(RequestError, match="released"):
        compiled(_pair(1.0))
    assert not any(r.busy for r in requests)
    compiled.release()  # idempotent


def test_context_manager_releases_on_exit():
    with aioinfer.Core().compile_model(add_model(), "NUMPY") as compiled:
        request = compiled.create_infer_request()
        request.start_async(_pair(2.0))
        assert request.wait()["y"][0, 0] == 2.0
        assert _workers(compiled)
    assert _workers(compiled) == [] and compiled.released


def test_release_lets_a_started_run_finish_first():
    compiled = aioinfer.Core().compile_model(matmul_chain(), "NUMPY")
    request = compiled.create_infer_request()
    gate = gate_request(request)
    x = np.random.default_rng(2).standard_normal((128, 128)).astype(np.float32)
    request.start_async(x)
    threading.Timer(0.1, gate.set).start()
    compiled.release()  # waits for the held run, then joins the worker
    assert request.wait_for(0) and _workers(compiled) == []
    np.testing.assert_allclose(request.wait()[0], matmul_chain_reference(x), rtol=1e-4,
                               atol=1e-4)


def test_release_racing_with_submissions_strands_nothing():
    # Every start_async either raises (released) or completes: none waits forever.
    for _ in range(20):
        compiled = aioinfer.Core().compile_model(add_model(), "NUMPY",
                                                 {"NUM_STREAMS": 2})
        requests = [compiled.create_infer_request() for _ in range(8)]
        started: list[aioinfer.InferRequest] = []
        go = threading.Barrier(2)

        def submit_all(requests=requests, started=started, go=go) -> None:
            go.wait()
            for request in requests:
                try:
                    request.start_async(_pair(1.0))
                except RequestError:
                    continue
                started.append(request)

        submitter = threading.Thread(target=submit_all)
        submitter.start()
        go.wait()
        compiled.release()
        submitter.join(10)
        for request in started:
            assert request.wait_for(10), "a run started before release never finished"
            assert request.wait()["y"][0, 0] == 1.0
        assert _workers(compiled) == []


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux only")
def test_worker_nice_lowers_only_the_workers_priority():
    from aioinfer.runtime.executors import Executor, set_worker_nice

    def nice_here() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = nice_here()
    executor = Executor("nice-probe", workers=1)
    set_worker_nice(min(before + 3, 19))
    try:
        submitted: list[int] = []
        done = threading.Event()

        class Probe:
            def execute(self, index: int, lane: object) -> None:
                submitted.append(nice_here())
                done.set()

        executor.submit(Probe())
        assert done.wait(10)
    finally:
        set_worker_nice(0)
        executor.close()
    assert submitted == [min(before + 3, 19)] and nice_here() == before
    with pytest.raises(ValueError, match="0..19"):
        set_worker_nice(-1)
