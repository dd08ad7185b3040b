"""BATCH: concurrent single-sample requests coalesced into batch runs, split back exactly."""

from __future__ import annotations

import threading

import anyio
import numpy as np
import pytest
from onnx import TensorProto, helper

import aioinfer
from aioinfer import errors, models

from ._plugins import batch_model, batch_reference


def _x(k: int) -> np.ndarray:
    return np.random.default_rng(k).standard_normal((1, 8)).astype(np.float32)


@pytest.mark.anyio
async def test_concurrent_requests_run_as_full_batches_with_their_own_results() -> None:
    compiled = aioinfer.Core().compile_model(batch_model(), "BATCH:NUMPY(4)",
                                             {"AUTO_BATCH_TIMEOUT": 1000})
    assert compiled.get_property("BATCH_SIZE") == 4
    assert compiled.get_property("BATCH_UNBATCHED_REASON") == ""
    got: dict[int, np.ndarray] = {}

    async def one(k: int) -> None:
        got[k] = (await compiled.infer_async({"x": _x(k)}))["y"]

    async with anyio.create_task_group() as tg:
        for k in range(32):
            tg.start_soon(one, k)
    for k in range(32):
        np.testing.assert_allclose(got[k], batch_reference(_x(k)), rtol=1e-5, atol=1e-6)
    assert compiled.statistics()["sizes"] == {4: 8}  # never waited for the 1 s timeout


@pytest.mark.anyio
async def test_a_partial_batch_runs_when_the_timeout_expires() -> None:
    compiled = aioinfer.Core().compile_model(batch_model(), "BATCH:NUMPY(4)",
                                             {"AUTO_BATCH_TIMEOUT": 30})
    threads = threading.active_count()
    got: dict[int, np.ndarray] = {}

    async def one(k: int) -> None:
        got[k] = (await compiled.infer_async({"x": _x(k)}))["y"]

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for k in range(3):
                tg.start_soon(one, k)
            await anyio.sleep(0.01)
            assert threading.active_count() <= threads + 2  # waiting holds no thread
    assert compiled.statistics()["sizes"] == {3: 1}
    for k in range(3):
        np.testing.assert_allclose(got[k], batch_reference(_x(k)), rtol=1e-5, atol=1e-6)
    compiled.set_property({"AUTO_BATCH_TIMEOUT": 0})  # settable after compiling, as in OpenVINO
    alone = await compiled.infer_async({"x": _x(9)})
    np.testing.assert_allclose(alone["y"], batch_reference(_x(9)), rtol=1e-5, atol=1e-6)


@pytest.mark.anyio
async def test_a_request_cancelled_while_it_waits_leaves_the_batch() -> None:
    compiled = aioinfer.Core().compile_model(batch_model(), "BATCH:NUMPY(4)",
                                             {"AUTO_BATCH_TIMEOUT": 5000})
    request = compiled.create_infer_request()
    with anyio.move_on_after(0.05) as scope:
        await request.infer_async({"x": _x(0)})
    assert scope.cancelled_caught and not request.busy
    np.testing.assert_allclose(request.infer({"x": _x(1)})["y"], batch_reference(_x(1)),
                               rtol=1e-5, atol=1e-6)  # the sync path runs alone


def test_a_batch_fixed_by_a_constant_reshape_runs_unbatched_and_says_where() -> None:
    proto = models.get("cnn", image_size=32)  # batch 1 exported into its graph
    compiled = aioinfer.Core().compile_model(proto, "BATCH:NUMPY(4)")
    assert compiled.get_property("BATCH_SIZE") == 1
    reason = compiled.get_property("BATCH_UNBATCHED_REASON")
    assert "'probabilities' does not carry the batch axis" in reason and "node" in reason
    feeds = models.example_inputs(proto)
    want = aioinfer.Core().compile_model(proto, "NUMPY")(feeds)["probabilities"]
    np.testing.assert_array_equal(compiled(feeds)["probabilities"], want)


def _mixing_model() -> object:
    """y = x - ReduceMean(x, axis 0): right shapes with a batch, wrong numbers."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["m"], name="mean", axes=[0], keepdims=1),
         helper.make_node("Sub", ["x", "m"], ["y"], name="sub")],
        "mixing", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_model_mixing_samples_is_caught_by_the_probe() -> None:
    compiled = aioinfer.Core().compile_model(_mixing_model(), "BATCH:NUMPY(4)")
    assert compiled.get_property("BATCH_SIZE") == 1
    assert "mixes samples" in compiled.get_property("BATCH_UNBATCHED_REASON")


def test_bad_batch_devices_are_typed_errors() -> None:
    core = aioinfer.Core()
    with pytest.raises(errors.DeviceNotFoundError, match="needs a device"):
        core.compile_model(batch_model(), "BATCH")
    with pytest.raises(errors.DeviceNotFoundError, match="one device"):
        core.compile_model(batch_model(), "BATCH:NUMPY,TEMPLATE")
    with pytest.raises(errors.DeviceNotFoundError, match="virtual"):
        core.compile_model(batch_model(), "BATCH:HETERO")
    fixed = core.compile_model(batch_model(batch=2), "BATCH:NUMPY(4)")
    assert "batch 2" in fixed.get_property("BATCH_UNBATCHED_REASON")
