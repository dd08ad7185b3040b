"""The OPENVINO device (OpenVINO's runtime as a plugin); skipped without openvino."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")

import anyio  # noqa: E402
import openvino as ov  # noqa: E402

import aioinfer  # noqa: E402
from aioinfer import models  # noqa: E402
from aioinfer import properties as P  # noqa: E402
from aioinfer.errors import (  # noqa: E402
    InferenceError,
    InvalidPropertyValueError,
    RequestError,
    UnsupportedOperationError,
)

from ._models import (  # noqa: E402
    SoftClip,
    custom_op_model,
    custom_op_reference,
    reshape_model,
    small_bert,
    small_cnn,
)

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def core() -> aioinfer.Core:
    core = aioinfer.Core()
    core.add_extension(SoftClip)
    return core


def _reference(core: aioinfer.Core, proto: object, feeds: dict) -> list[np.ndarray]:
    results = core.compile_model(proto, "NUMPY")(feeds)
    return [np.asarray(results[k]) for k in range(len(list(results)))]


# -- properties --------------------------------------------------------------------------------
def test_precision_is_f32_unless_asked(core: aioinfer.Core) -> None:
    assert core.get_property("OPENVINO", P.INFERENCE_PRECISION_HINT) == "f32"
    native = ov.Core().get_property("CPU", P.INFERENCE_PRECISION_HINT).to_string()
    assert f"OpenVINO's own default precision here: {native}" in core.get_property(
        "OPENVINO", P.FULL_DEVICE_NAME)
    with core.compile_model(small_cnn(), "OPENVINO") as compiled:
        assert compiled.get_property(P.INFERENCE_PRECISION_HINT) == "f32"


def test_host_cpu_uuid_and_devices(core: aioinfer.Core) -> None:
    assert core.get_property("OPENVINO", P.DEVICE_UUID) == P.host_cpu_uuid()
    assert core.get_property("OPENVINO", P.AVAILABLE_DEVICES) == ov.Core().available_devices
    with pytest.raises(InvalidPropertyValueError) as info:
        core.compile_model(small_cnn(), "OPENVINO", {P.DEVICE_ID: "NO_SUCH"})
    assert info.value.key == P.DEVICE_ID


def test_streams_come_from_openvino(core: aioinfer.Core) -> None:
    config = {P.PERFORMANCE_HINT: "THROUGHPUT", P.NUM_STREAMS: 2}
    with core.compile_model(small_cnn(), "OPENVINO", config) as compiled:
        assert compiled.get_property(P.NUM_STREAMS) == 2
        assert compiled.get_property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS) >= 2
        assert compiled.executors() == []  # OpenVINO's streams: no worker threads of ours
        assert compiled.get_property(P.PERFORMANCE_HINT) == "THROUGHPUT"


# -- results -----------------------------------------------------------------------------------
@pytest.mark.parametrize("build", [small_cnn, small_bert], ids=["cnn", "bert"])
def test_results_match_numpy(core: aioinfer.Core, build: object) -> None:
    proto = build()  # type: ignore[operator]
    feeds = models.example_inputs(proto)
    expected = _reference(core, proto, feeds)
    with core.compile_model(proto, "OPENVINO") as compiled:
        got = compiled.create_infer_request().infer(feeds)
        for k, want in enumerate(expected):
            np.testing.assert_allclose(got[k], want, rtol=1e-4, atol=1e-4)


@pytest.mark.anyio
async def test_infer_async_on_every_loop(core: aioinfer.Core) -> None:
    proto = small_cnn()
    rng = np.random.default_rng(0)
    images = [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(8)]
    compiled = core.compile_model(proto, "OPENVINO", {P.PERFORMANCE_HINT: "THROUGHPUT"})
    expected = [compiled.create_infer_request().infer(x)[0].copy() for x in images]
    got: dict[int, np.ndarray] = {}

    async def one(k: int) -> None:
        got[k] = (await compiled.infer_async(images[k]))[0]

    async with anyio.create_task_group() as group:
        for k in range(len(images)):
            group.start_soon(one, k)
    for k, want in enumerate(expected):
        np.testing.assert_array_equal(got[k], want)  # the same engine: the same bits
    compiled.release()


def test_outputs_are_not_overwritten_by_the_next_inference(core: aioinfer.Core) -> None:
    request = core.compile_model(small_cnn(), "OPENVINO").create_infer_request()
    first = request.infer(np.ones((1, 3, 32, 32), np.float32))[0]
    kept = first.copy()
    request.infer(np.zeros((1, 3, 32, 32), np.float32))
    np.testing.assert_array_equal(first, kept)


def _layouts(x: np.ndarray) -> dict[str, np.ndarray]:
    read_only = x.copy()
    read_only.flags.writeable = False
    wide = np.repeat(x, 2, axis=3)
    return {"read_only": read_only, "fortran": np.asfortranarray(x),
            "strided": wide[..., ::2], "broadcast": np.broadcast_to(x[:, :1], x.shape),
            "from_bytes": np.frombuffer(x.tobytes(), np.float32).reshape(x.shape)}


@pytest.mark.parametrize("layout", ["read_only", "fortran", "strided", "broadcast",
                                    "from_bytes"])
def test_read_only_and_strided_inputs(core: aioinfer.Core, layout: str) -> None:
    """OpenVINO shares only writeable C-contiguous memory: other arrays are copied once, and
    the copy lives until OpenVINO has read it (on both paths)."""
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(np.float32)
    value = _layouts(x)[layout]
    with core.compile_model(small_cnn(), "OPENVINO") as compiled:
        request = compiled.create_infer_request()
        want = request.infer(np.ascontiguousarray(value))[0].copy()
        before = value.copy()
        for _ in range(3):
            np.testing.assert_array_equal(request.infer(value)[0], want)
            junk = [np.full(x.shape, 7.0, np.float32) for _ in range(8)]  # reuse freed memory
            np.testing.assert_array_equal(anyio.run(request.infer_async, value)[0], want)
            del junk
        np.testing.assert_array_equal(value, before)


def test_contiguous_inputs_are_shared_not_copied(core: aioinfer.Core) -> None:
    x = np.ones((1, 3, 32, 32), np.float32)
    with core.compile_model(small_cnn(), "OPENVINO") as compiled:
        request = compiled.create_infer_request()
        request.infer(x)
        sync = request._sync  # type: ignore[attr-defined]
        assert np.shares_memory(sync.engine.get_input_tensor(0).data, x)


def test_profiling_comes_from_openvino(core: aioinfer.Core) -> None:
    with core.compile_model(small_cnn(), "OPENVINO", {P.PERF_COUNT: True}) as compiled:
        request = compiled.create_infer_request()
        request.infer(np.ones((1, 3, 32, 32), np.float32))
        info = request.profiling_info
        assert any(e["node_type"] == "Stage" for e in info)
        ops = [e for e in info if e["node_type"] != "Stage"]
        assert ops and all(e["real_time"] >= 0 for e in ops)


# -- failures ----------------------------------------------------------------------------------
def test_runtime_failure_is_an_inference_error_on_both_paths(core: aioinfer.Core) -> None:
    request = core.compile_model(reshape_model(), "OPENVINO").create_infer_request()
    bad = {"x": np.ones(6, np.float32), "shape": np.array([4, 4], np.int64)}
    good = {"x": np.ones(6, np.float32), "shape": np.array([2, 3], np.int64)}
    with pytest.raises(InferenceError):
        request.infer(bad)

    async def check() -> None:
        with anyio.fail_after(10):  # OpenVINO calls no callback on failure: the watch does
            with pytest.raises(InferenceError):
                await request.infer_async(bad)
        assert (await request.infer_async(good))["y"].shape == (2, 3)

    anyio.run(check)
    request.start_async(bad)
    with pytest.raises(InferenceError):
        request.wait()
    assert not request.busy


def test_released_model_refuses_requests(core: aioinfer.Core) -> None:
    compiled = core.compile_model(small_cnn(), "OPENVINO")
    request = compiled.create_infer_request()
    compiled.release()
    with pytest.raises(RequestError):
        request.infer(np.ones((1, 3, 32, 32), np.float32))


# -- query_model and HETERO ----------------------------------------------------------------------
def test_query_claims_every_node_of_real_models(core: aioinfer.Core) -> None:
    for proto in (small_cnn(), small_bert()):
        model = core.read_model(proto)
        assert set(core.query_model(model, "OPENVINO")) == {n.name for n in
                                                           model.proto.graph.node}


@pytest.mark.parametrize("named", [True, False], ids=["named", "unnamed"])
def test_query_leaves_out_only_the_custom_node(core: aioinfer.Core, named: bool) -> None:
    model = core.read_model(custom_op_model(named))
    names = [n.name for n in model.proto.graph.node]
    claimed = core.query_model(model, "OPENVINO")
    assert sorted(claimed) == sorted(n for k, n in enumerate(names) if k != 2)
    assert set(claimed.values()) == {"OPENVINO"}


def test_compile_names_the_node_openvino_lacks(core: aioinfer.Core) -> None:
    with pytest.raises(UnsupportedOperationError) as info:
        core.compile_model(custom_op_model(), "OPENVINO")
    assert info.value.node == "clip" and info.value.op_type == "SoftClip"


@pytest.mark.parametrize("device", ["HETERO:OPENVINO,NUMPY", "CPU"])
def test_custom_op_runs_on_numpy_around_openvino(core: aioinfer.Core, device: str) -> None:
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    with core.compile_model(custom_op_model(), device) as compiled:
        devices = compiled.get_property(P.EXECUTION_DEVICES)
        assert "OPENVINO" in devices and "NUMPY" in devices, devices
        np.testing.assert_allclose(compiled({"x": x})["y"], custom_op_reference(x),
                                   rtol=1e-5, atol=1e-5)

        async def check() -> None:
            got = await compiled.create_infer_request().infer_async({"x": x})
            np.testing.assert_allclose(got["y"], custom_op_reference(x), rtol=1e-5, atol=1e-5)

        anyio.run(check)


def test_no_thread_waits_per_request(core: aioinfer.Core) -> None:
    """Many requests in flight hold no aioinfer thread each: OpenVINO's callbacks end them."""
    compiled = core.compile_model(small_cnn(), "OPENVINO", {P.PERFORMANCE_HINT: "THROUGHPUT"})
    x = np.ones((1, 3, 32, 32), np.float32)
    peak = [0]

    async def check() -> None:
        async def one() -> None:
            await compiled.create_infer_request().infer_async(x)
            peak[0] = max(peak[0], sum(t.name.startswith("aioinfer:") for t in
                                       threading.enumerate()))

        async with anyio.create_task_group() as group:
            for _ in range(32):
                group.start_soon(one)

    anyio.run(check)
    # The host workers that check inputs (4) and the failure watch, not one per request.
    assert peak[0] <= 6, peak[0]
    compiled.release()


def test_the_exit_guard_holds_nothing_after_runs(core: aioinfer.Core) -> None:
    """Every inference leaves the exit guard (one that did not would hold up the exit)."""
    from aioinfer.plugins.engine_exit import GUARD

    request = core.compile_model(reshape_model(), "OPENVINO").create_infer_request()
    bad = {"x": np.ones(6, np.float32), "shape": np.array([4, 4], np.int64)}
    good = {"x": np.ones(6, np.float32), "shape": np.array([2, 3], np.int64)}

    async def runs() -> None:
        for feeds in (good, bad, good):
            try:
                await request.infer_async(feeds)
            except InferenceError:
                pass

    anyio.run(runs)
    with pytest.raises(InferenceError):
        request.infer(bad)
    request.infer(good)
    assert GUARD.inside == 0 and not GUARD.closing


NICE_SCRIPT = """
import asyncio, json, os, threading
import numpy as np
import aioinfer
from aioinfer.runtime.executors import set_worker_nice
from tests.engines._models import small_cnn

def nice(tid):
    return os.getpriority(os.PRIO_PROCESS, tid)

main = nice(threading.get_native_id())
set_worker_nice(min(main + 3, 19))
compiled = aioinfer.Core().compile_model(small_cnn(), "OPENVINO",
                                         {"PERFORMANCE_HINT": "THROUGHPUT"})
x = np.ones((1, 3, 32, 32), np.float32)

async def run():
    requests = [compiled.create_infer_request() for _ in range(2)]
    for _ in range(3):
        await asyncio.gather(*[r.infer_async(x) for r in requests])

asyncio.run(run())
python = {t.native_id for t in threading.enumerate()}
engine = [nice(int(t)) for t in os.listdir("/proc/self/task") if int(t) not in python]
print(json.dumps({"main": main, "after": nice(threading.get_native_id()), "engine": engine}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux only")
def test_worker_nice_reaches_openvinos_threads_not_the_loops() -> None:
    done = subprocess.run([sys.executable, "-c", NICE_SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["after"] == seen["main"]  # the loop's thread keeps its priority
    assert seen["engine"], "OpenVINO started no threads of its own"
    assert min(seen["engine"]) >= min(seen["main"] + 3, 19), seen
