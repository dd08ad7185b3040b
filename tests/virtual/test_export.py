"""MULTI's export_model / import_model (each device's own blob); AUTO refuses to export."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import aioinfer
from aioinfer import models
from aioinfer.errors import InvalidModelError, NotSupportedError


def _outputs(compiled: aioinfer.CompiledModel, feeds: dict) -> list[bytes]:
    return [np.asarray(v).tobytes() for v in compiled(feeds).to_list()]


def test_multi_imports_each_device_and_gives_the_same_bytes() -> None:
    core = aioinfer.Core()
    proto = models.get("cnn")
    feeds = models.example_inputs(proto)
    compiled = core.compile_model(proto, "MULTI:NUMPY(2),TEMPLATE")
    blob = compiled.export_model()
    imported = core.import_model(blob, "MULTI")
    assert imported.get_property("EXECUTION_DEVICES") == ["NUMPY", "TEMPLATE"]
    assert (imported.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
            == compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    assert imported.export_model() == blob
    for lane_a, lane_b in zip(compiled.lanes.lanes, imported.lanes.lanes, strict=True):
        assert lane_a.device == lane_b.device and lane_a.workers == lane_b.workers
        assert _outputs(lane_a.compiled, feeds) == _outputs(lane_b.compiled, feeds)

    async def serve() -> list[list[bytes]]:
        results = [await imported.create_infer_request().infer_async(feeds)
                   for _ in range(4)]
        return [[np.asarray(v).tobytes() for v in r.to_list()] for r in results]

    numpy_alone = _outputs(compiled.lanes.lanes[0].compiled, feeds)
    template_alone = _outputs(compiled.lanes.lanes[1].compiled, feeds)
    assert all(r in (numpy_alone, template_alone) for r in asyncio.run(serve()))


def test_multi_refuses_a_damaged_blob() -> None:
    core = aioinfer.Core()
    blob = bytearray(core.compile_model(models.get("cnn"), "MULTI:NUMPY,TEMPLATE").export_model())
    blob[-10] ^= 0x01
    with pytest.raises(InvalidModelError, match="MULTI: import_model: the blob is refused"):
        core.import_model(bytes(blob), "MULTI")
    with pytest.raises(InvalidModelError, match="wrong magic"):
        core.import_model(b"AIOINFER-HETERO1" + bytes(blob[16:]), "MULTI")


def test_auto_does_not_export() -> None:
    core = aioinfer.Core()
    compiled = core.compile_model(models.get("cnn"), "AUTO:NUMPY,TEMPLATE")
    with pytest.raises(NotSupportedError, match="AUTO: export_model is not supported"):
        compiled.export_model()
    with pytest.raises(NotSupportedError):
        core.import_model(b"anything", "AUTO")
    compiled.release()


@pytest.mark.parametrize("name", ["bert", "cnn"])  # batched; unbatched (output lacks the axis)
def test_batch_imports_both_plans_and_gives_the_same_bytes(name: str) -> None:
    core = aioinfer.Core()
    proto = models.get(name)
    feeds = models.example_inputs(proto)
    compiled = core.compile_model(proto, "BATCH:NUMPY(4)", {"AUTO_BATCH_TIMEOUT": 50})
    blob = compiled.export_model()
    imported = core.import_model(blob, "BATCH")
    for key in ("BATCH_SIZE", "BATCH_UNBATCHED_REASON", "AUTO_BATCH_TIMEOUT",
                "OPTIMAL_NUMBER_OF_INFER_REQUESTS"):
        assert imported.get_property(key) == compiled.get_property(key), key
    assert (imported.get_property("BATCH_SIZE") > 1) is (name == "bert")
    assert imported.export_model() == blob

    async def serve(model: aioinfer.CompiledModel) -> list[list[bytes]]:
        results = await asyncio.gather(*(model.infer_async(feeds) for _ in range(8)))
        return [[np.asarray(v).tobytes() for v in r.to_list()] for r in results]

    assert asyncio.run(serve(imported)) == asyncio.run(serve(compiled))
    damaged = bytearray(blob)
    damaged[len(damaged) // 2] ^= 0x01
    with pytest.raises(InvalidModelError, match="BATCH: import_model: the blob is refused"):
        core.import_model(bytes(damaged), "BATCH")
