"""Which devices' results MULTI, AUTO and BATCH may hand on without a copy.

:func:`aioinfer.plugins.multi.outputs.fresh_outputs` trusts the built-in plugins to return
arrays that no later run writes into; this checks that claim on each one installed, the way
it matters: the first run's results must stay intact after the same request runs again.
"""

from __future__ import annotations

import numpy as np
import pytest

import aioinfer
from aioinfer.plugins.multi.outputs import fresh_outputs
from aioinfer.testing.behaviour import _expected, _inputs, add_relu_model

from ._plugins import ReusingPlugin, batch_model, batch_reference

DEVICES = ["NUMPY", "TEMPLATE", "OPENVINO", "ORT", "HETERO:NUMPY,TEMPLATE"]


def _core() -> aioinfer.Core:
    core = aioinfer.Core()
    core.register_plugin(ReusingPlugin("REUSING"))
    return core


@pytest.mark.parametrize("device", DEVICES)
def test_a_device_said_to_return_fresh_arrays_never_overwrites_them(device: str) -> None:
    core = _core()
    try:
        compiled = core.compile_model(add_relu_model(), device)
    except aioinfer.errors.DeviceNotFoundError as exc:  # an engine that is not installed
        pytest.skip(str(exc))
    assert fresh_outputs(compiled)
    request = compiled.create_infer_request()
    kept = request.infer(_inputs(1))["y"]
    for k in (2, 3):
        request.infer(_inputs(k))
    np.testing.assert_allclose(kept, _expected(_inputs(1)), rtol=1e-6)


def test_a_device_that_reuses_its_buffers_is_known_and_copied_from() -> None:
    core = _core()
    reusing = core.compile_model(add_relu_model(), "REUSING")
    assert not fresh_outputs(reusing)
    request = reusing.create_infer_request()
    kept = request.infer(_inputs(1))["y"]
    request.infer(_inputs(2))
    assert not np.allclose(kept, _expected(_inputs(1)))  # the plugin really reuses them
    assert not fresh_outputs(core.compile_model(add_relu_model(), "HETERO:REUSING,NUMPY"))


@pytest.mark.anyio
async def test_batch_copies_the_rows_of_a_reused_batch_buffer() -> None:
    core = _core()
    compiled = core.compile_model(batch_model(), "BATCH:REUSING(4)",
                                  {"AUTO_BATCH_TIMEOUT": 10000})
    assert compiled.get_property("BATCH_SIZE") == 4
    requests = [compiled.create_infer_request() for _ in range(8)]
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((1, 8)).astype(np.float32) for _ in range(8)]
    import anyio

    kept: list[np.ndarray] = [np.empty(0)] * 8

    async def one(k: int) -> None:
        kept[k] = (await requests[k].infer_async({"x": xs[k]}))["y"]

    async with anyio.create_task_group() as tg:  # two full batches on one batch request
        for k in range(8):
            tg.start_soon(one, k)
    assert compiled.statistics()["sizes"] == {4: 2}
    for k in range(8):
        np.testing.assert_allclose(kept[k], batch_reference(xs[k]), rtol=1e-5, atol=1e-6)
