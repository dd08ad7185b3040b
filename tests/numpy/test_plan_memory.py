"""Plan memory and threads: intermediates are released after their last reader, products split
over threads give BLAS's answer, and the plugin shares cores out between streams."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from dataclasses import replace

import numpy as np
import pytest
from onnx import helper

import aioinfer
from aioinfer.plugins.numpy.kernels import parallel
from aioinfer.plugins.numpy.threads import blas_threads, cores, per_stream

from .passes._util import model, plan


def _chain_model():
    x = np.ones((4, 4), dtype=np.float32)
    nodes = [helper.make_node("Sigmoid", ["x"], ["a"]),
             helper.make_node("Tanh", ["a"], ["b"]),
             helper.make_node("Neg", ["b"], ["c"]),
             helper.make_node("Add", ["c", "a"], ["y"])]
    return model(nodes, {"x": x}, ["y"], float_outputs=True), x


def test_intermediates_are_released_after_their_last_reader() -> None:
    m, x = _chain_model()
    p = plan(m)
    alive_after: dict[str, list[bool]] = {}
    refs: dict[str, weakref.ref] = {}

    def watch(step):
        fn = step.fn

        def run(*args):
            gc.collect()
            alive_after[step.node] = {k: r() is not None for k, r in refs.items()}
            out = fn(*args)
            refs[step.op_type] = weakref.ref(out)
            return out
        return replace(step, fn=run)

    p.steps = [watch(s) for s in p.steps]
    (y,) = p.run([x])
    gc.collect()
    ops = [s.op_type for s in p.steps]
    assert ops == ["Sigmoid", "Tanh", "Neg", "Add"]
    last = p.steps[-1].node
    # Tanh's output is read only by Neg: gone before Add runs; Sigmoid's is read by Add: alive.
    assert alive_after[last] == {"Sigmoid": True, "Tanh": False, "Neg": True}
    assert refs["Sigmoid"]() is None and refs["Neg"]() is None  # all dropped after the run
    np.testing.assert_allclose(y, -np.tanh(1 / (1 + np.exp(-x))) + 1 / (1 + np.exp(-x)),
                               rtol=1e-6)


def test_plan_is_reusable_and_outputs_are_not_recycled() -> None:
    m, x = _chain_model()
    p = plan(m)
    first = p.run([x])[0].copy()
    second = p.run([x * 2])[0]
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(p.run([x])[0], first)


@pytest.mark.parametrize("shapes", [((64, 30), (30, 50)), ((3, 40, 16), (16, 70)),
                                    ((2, 1, 64, 8), (5, 8, 33))])
def test_split_matmul_equals_numpy(shapes) -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = rng.standard_normal(shapes[1]).astype(np.float32)
    saved = parallel._MIN_FLOPS
    parallel._MIN_FLOPS = 0
    try:
        parallel.set_intra_threads(3)
        got = parallel.matmul(a, b)
    finally:
        parallel._MIN_FLOPS = saved
        parallel.set_intra_threads(1)
    np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5, atol=1e-5)


def test_intra_threads_are_per_thread() -> None:
    parallel.set_intra_threads(4)
    seen = []
    t = threading.Thread(target=lambda: seen.append(parallel.intra_threads()))
    t.start()
    t.join()
    assert seen == [1] and parallel.intra_threads() == 4
    parallel.set_intra_threads(1)


def test_cores_shared_out_between_streams() -> None:
    assert per_stream(0, 1) == cores()
    assert per_stream(8, 2) == 4 and per_stream(1, 4) == 1
    m, _ = _chain_model()
    core = aioinfer.Core()
    latency = core.compile_model(m, "NUMPY", {"PERFORMANCE_HINT": "LATENCY"})
    assert latency.threads_per_stream == cores()
    tput = core.compile_model(m, "NUMPY", {"PERFORMANCE_HINT": "THROUGHPUT",
                                           "INFERENCE_NUM_THREADS": 2, "NUM_STREAMS": 2})
    assert tput.threads_per_stream == 1
    assert tput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") == 2
    assert blas_threads() in (None, 1)


def test_dynamic_inputs_get_a_plan_per_shape() -> None:
    import onnx

    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Reshape", ["x", "s"], ["r"]),
             helper.make_node("Relu", ["r"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n", 3])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    compiled = aioinfer.Core().compile_model(m, "NUMPY")
    specialised = compiled.plan
    assert len(specialised.generic.steps) == 3
    for n in (2, 5, 2):
        x = np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)
        np.testing.assert_array_equal(compiled({"x": x})[0], np.maximum(x, 0))
        assert [s.op_type for s in specialised.plan_for([x]).steps] == ["Reshape", "Relu"]
    assert len(specialised._plans) == 2


def test_blas_threads_only_for_a_lone_stream_and_not_after_a_starved_call() -> None:
    from aioinfer.plugins.numpy.kernels import blas_mode

    assert not blas_mode.blas_may_thread()  # no stream running
    blas_mode.stream_started()
    blas_mode.stream_started()
    try:
        assert not blas_mode.blas_may_thread()  # two streams: they would fight over the cores
    finally:
        blas_mode.stream_finished()
    try:
        blas_mode.check(0.050, 4e6)  # 50 ms for 4 MFLOP: the pool was starved
        assert not blas_mode.blas_may_thread()
    finally:
        blas_mode.stream_finished()
        blas_mode._state["banned_until"] = 0.0


def test_products_agree_whether_blas_or_the_split_threads_them(monkeypatch) -> None:
    from aioinfer.plugins.numpy.kernels import blas_mode

    rng = np.random.default_rng(3)
    a = rng.standard_normal((1, 64, 256)).astype(np.float32)
    b = rng.standard_normal((256, 300)).astype(np.float32)
    parallel.set_intra_threads(2)
    try:
        results = []
        for allowed in (True, False):
            monkeypatch.setattr(blas_mode, "blas_may_thread", lambda allowed=allowed: allowed)
            results.append(parallel.matmul(a, b))
    finally:
        parallel.set_intra_threads(1)
    for got in results:
        np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5, atol=1e-4)
    assert blas_threads() in (None, 1)  # BLAS is back to one thread after the product


def _sleeper(per_index: float, per_block: float, seen: list[tuple[int, int]]):
    """Work that cuts well (``per_index``: two blocks sleep at once) or badly (``per_block``
    under one lock, as GIL-bound work would: two blocks cost twice one), so that either way
    the better choice is twice as fast, whatever the host's load."""
    serial = threading.Lock()

    def fn(lo: int, hi: int) -> None:
        seen.append((lo, hi))
        time.sleep(per_index * (hi - lo))
        with serial:
            time.sleep(per_block)
    return fn


@pytest.mark.parametrize(("per_index", "per_block", "cut"), [(0.002, 0.0, True),
                                                             (0.0, 0.004, False)])
def test_run_blocks_keeps_whichever_way_timed_faster(monkeypatch, per_index, per_block,
                                                     cut) -> None:
    monkeypatch.setattr(parallel, "_sites", {})
    monkeypatch.setattr(parallel, "_EXACT", True)  # a BLAS whose cuts keep the bits
    seen: list[tuple[int, int]] = []
    fn = _sleeper(per_index, per_block, seen)
    parallel.set_intra_threads(2)
    try:
        for _ in range(2 * parallel._TRIALS):  # timing: cut and uncut, alternately
            parallel.run_blocks(fn, 8, 1e9)
        assert list(parallel.split_decisions().values()) == [cut]
        seen.clear()
        parallel.run_blocks(fn, 8, 1e9)
    finally:
        parallel.set_intra_threads(1)
    assert sorted(seen) == ([(0, 4), (4, 8)] if cut else [(0, 8)])


def test_run_blocks_below_the_floor_stays_on_the_calling_thread(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "_sites", {})
    threads: list[str] = []
    parallel.set_intra_threads(2)
    try:
        parallel.run_blocks(lambda lo, hi: threads.append(threading.current_thread().name),
                            8, work=1e6, min_work=2e6)
    finally:
        parallel.set_intra_threads(1)
    assert threads == [threading.current_thread().name] and parallel.split_decisions() == {}


def test_where_cuts_change_the_bits_size_alone_decides(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "_sites", {})
    monkeypatch.setattr(parallel, "_EXACT", False)
    seen: list[tuple[int, int]] = []
    fn = _sleeper(0.0, 0.002, seen)  # uncut would time faster: timing must not decide
    parallel.set_intra_threads(2)
    try:
        for _ in range(2 * parallel._TRIALS + 1):
            parallel.run_blocks(fn, 8, 1e9)
    finally:
        parallel.set_intra_threads(1)
    assert parallel.split_decisions() == {}
    assert sorted(set(seen)) == [(0, 4), (4, 8)]
    parallel.set_intra_threads(2)
    try:  # a kernel computing each output alike in any block: timing may still choose
        for _ in range(2 * parallel._TRIALS):
            parallel.run_blocks(fn, 8, 1e9, exact=True)
    finally:
        parallel.set_intra_threads(1)
    assert list(parallel.split_decisions().values()) == [False]


def test_the_split_probe_matches_this_blas() -> None:
    """exact_splits() is what a product cut by rows shows on this machine's BLAS."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((50, 64)).astype(np.float32)
    b = rng.standard_normal((64, 40)).astype(np.float32)
    cut = np.concatenate([a[:25] @ b, a[25:] @ b])
    if parallel.exact_splits():
        assert np.array_equal(cut, a @ b)
