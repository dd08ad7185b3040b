"""start_async / wait / wait_for / set_callback / cancel: the API for code without a loop."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import aioinfer
from aioinfer.errors import InputTypeError, RequestBusyError, RequestCancelledError, RequestError

from .models import add_model, gate_request, matmul_chain_reference


def _pair(k: float) -> list[np.ndarray]:
    return [np.full((1, 16), k, np.float32), np.zeros((1, 16), np.float32)]


def test_start_async_then_wait(add_compiled):
    request = add_compiled.create_infer_request()
    request.start_async(_pair(5.0))
    results = request.wait()
    assert results["y"][0, 0] == 5.0 and request.results is results
    assert request.wait_for(0) and request.error is None


def test_wait_before_start_is_an_error(add_compiled):
    with pytest.raises(RequestError, match="start_async"):
        add_compiled.create_infer_request().wait()


def test_wait_for_times_out_then_succeeds(slow_compiled):
    request = slow_compiled.create_infer_request()
    x = np.ones((128, 128), np.float32)
    gate = gate_request(request)
    request.start_async(x)
    assert request.wait_for(0.05) is False
    assert request.busy
    gate.set()
    assert request.wait_for(30.0) is True
    assert not request.busy


def test_callback_runs_on_worker_with_userdata(add_compiled):
    request = add_compiled.create_infer_request()
    calls: list[tuple[str, object, float]] = []
    done = threading.Event()

    def callback(req: aioinfer.InferRequest, userdata: object) -> None:
        calls.append((threading.current_thread().name, userdata, float(req.results["y"][0, 0])))
        done.set()

    request.set_callback(callback, userdata="default")
    request.start_async(_pair(7.0), userdata="mine")
    assert done.wait(10)
    request.wait()
    assert calls[0][1:] == ("mine", 7.0)
    assert calls[0][0].startswith("aioinfer:")


def test_error_reaches_wait_and_callback(add_compiled):
    request = add_compiled.create_infer_request()
    errors: list[BaseException | None] = []
    request.set_callback(lambda req, _: errors.append(req.error))
    request.start_async([np.zeros((1, 16), np.int64), np.zeros((1, 16), np.float32)])
    with pytest.raises(InputTypeError):
        request.wait()
    assert isinstance(errors[0], InputTypeError)
    request.start_async(_pair(1.0))  # reusable after a failure
    assert request.wait()["y"][0, 0] == 1.0


def test_busy_request_raises_request_busy(slow_compiled):
    request = slow_compiled.create_infer_request()
    gate = gate_request(request)
    x = np.ones((128, 128), np.float32)
    request.start_async(x)
    with pytest.raises(RequestBusyError):
        request.start_async(x)
    with pytest.raises(aioinfer.errors.RequestBusy):
        request.infer(x)
    gate.set()
    request.wait()


def test_cancel_drops_results_and_request_is_reusable(slow_compiled):
    request = slow_compiled.create_infer_request()
    x = np.random.default_rng(0).standard_normal((128, 128)).astype(np.float32)
    gate = gate_request(request)
    request.start_async(x)
    request.cancel()
    gate.set()
    with pytest.raises(RequestCancelledError):
        request.wait()
    assert not request.busy
    request.start_async(x)
    np.testing.assert_allclose(request.wait()[0], matmul_chain_reference(x), rtol=1e-4,
                               atol=1e-4)


def test_chaining_inside_a_callback(add_compiled):
    first = add_compiled.create_infer_request()
    second = add_compiled.create_infer_request()
    done = threading.Event()

    def feed_next(req: aioinfer.InferRequest, _: object) -> None:
        second.set_callback(lambda *_: done.set())
        second.start_async([req.results["y"], np.ones((1, 16), np.float32)])

    first.set_callback(feed_next)
    first.start_async(_pair(2.0))
    assert done.wait(10)
    assert second.wait()["y"][0, 0] == 3.0


def test_many_threads_each_with_own_request(add_compiled):
    failures: list[str] = []

    def worker(k: int) -> None:
        request = add_compiled.create_infer_request()
        for j in range(50):
            request.start_async(_pair(float(k * 1000 + j)))
            if request.wait()["y"][0, 0] != k * 1000 + j:
                failures.append(f"{k}/{j}")
            if add_compiled(_pair(float(j)))["y"][0, 0] != j:
                failures.append(f"call {k}/{j}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures


def test_profiling_info_with_perf_count():
    compiled = aioinfer.Core().compile_model(add_model(), "NUMPY", {"PERF_COUNT": True})
    request = compiled.create_infer_request()
    request.infer(_pair(1.0))
    stages = [e for e in request.profiling_info if e["node_type"] == "Stage"]
    assert stages and stages[0]["status"] == "EXECUTED" and stages[0]["real_time"] >= 0
    request.start_async(_pair(1.0))
    request.wait()
    stages = [e for e in request.profiling_info if e["node_type"] == "Stage"]
    assert stages[0]["exec_type"] == compiled.executor.name and stages[0]["cpu_time"] >= 0
    plain = aioinfer.Core().compile_model(add_model(), "NUMPY").create_infer_request()
    plain.infer(_pair(1.0))
    assert plain.profiling_info == []


def test_worker_threads_return_to_baseline():
    from aioinfer.runtime.executors import Executor

    def mine() -> int:  # other tests' idle workers come and go: count only this executor's
        return sum(t.name.startswith("aioinfer:short-lived:") for t in threading.enumerate())

    executor = Executor("short-lived", workers=3, idle_timeout=0.05)
    for _ in range(10):
        executor.submit(_Sleep())
    assert 1 <= executor.alive <= 3 and 1 <= mine() <= 3
    deadline = time.monotonic() + 5
    while mine() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mine() == 0 and executor.alive == 0
    executor.submit(_Sleep())  # restarted on demand
    assert mine() == 1
    executor.close()
    assert mine() == 0
    with pytest.raises(RequestError, match="closed"):
        executor.submit(_Sleep())


class _Sleep:
    def execute(self, index: int, lane: object) -> None:
        time.sleep(0.001)
