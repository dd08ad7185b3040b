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


@pytest.mark.parametrize("enabled", [True, False])
def test_enable_cpu_pinning_property(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> None:
    """A LATENCY conv plan pins its runs unless ENABLE_CPU_PINNING is off; the caller's own
    mask is the same after every run."""
    import onnx
    from onnx import helper

    import aioinfer
    import aioinfer.plugins.numpy.plugin as plugin

    keys: list[int] = []
    real = plugin.pinned_run

    def spy(key: int):
        keys.append(key)
        return real(key)

    monkeypatch.setattr(plugin, "pinned_run", spy)
    x = np.random.default_rng(0).standard_normal((1, 64, 56, 56)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((64, 64, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64, 56, 56])],
        initializer=[onnx.numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    compiled = aioinfer.Core().compile_model(
        model, "NUMPY", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 2,
                         "ENABLE_CPU_PINNING": enabled})
    assert compiled.get_property("ENABLE_CPU_PINNING") is enabled
    request = compiled.create_infer_request()
    mask = os.sched_getaffinity(0)
    for _ in range(3):
        request.infer({"x": x})
        assert os.sched_getaffinity(0) == mask
    assert keys and all(k == (2 if enabled else 0) for k in keys)
