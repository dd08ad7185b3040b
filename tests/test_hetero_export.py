"""HETERO's export_model / import_model: the cut and each device's blob, bit-identical."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import aioinfer
from aioinfer import models
from aioinfer.errors import InvalidModelError, NotSupportedError
from aioinfer.model import Model
from aioinfer.plugins.numpy.plugin import NumpyCompiledModel, NumpyPlugin


class CountingPlugin(NumpyPlugin):
    """NUMPY that counts its compiles and queries."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.compiles = 0
        self.queries = 0

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> NumpyCompiledModel:
        self.compiles += 1
        return super().compile_model(model, config)

    def query_model(self, model: Model, config: Mapping[str, Any]) -> dict[str, str]:
        self.queries += 1
        return super().query_model(model, config)


class _Unexportable(NumpyCompiledModel):
    def export_model(self) -> bytes:
        raise NotSupportedError(f"{self.device}: export_model is not supported",
                                device=self.device)


class NoExportPlugin(CountingPlugin):
    """NUMPY whose compiled models cannot be exported."""

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> NumpyCompiledModel:
        compiled = super().compile_model(model, config)
        compiled.__class__ = _Unexportable
        return compiled


def _alternating(proto: Any, first: str, second: str) -> dict[str, str]:
    return {node.name: (first if k % 2 == 0 else second)
            for k, node in enumerate(proto.graph.node)}


def _outputs(compiled: aioinfer.CompiledModel, feeds: dict) -> list[np.ndarray]:
    return [np.asarray(v) for v in compiled(feeds).to_list()]


@pytest.fixture
def setup() -> tuple[aioinfer.Core, CountingPlugin, Any, dict]:
    core = aioinfer.Core()
    counting = CountingPlugin("COUNTING")
    core.register_plugin(counting)
    proto = models.get("cnn")
    return core, counting, proto, models.example_inputs(proto)


def test_import_is_bit_identical_and_compiles_nothing(setup) -> None:
    core, counting, proto, feeds = setup
    compiled = core.compile_model(proto, "HETERO:COUNTING,TEMPLATE",
                                  {"AFFINITY": _alternating(proto, "COUNTING", "TEMPLATE")})
    assert compiled.get_property("HETERO_NUMBER_OF_SUBMODELS") > 10  # many transfers
    blob = compiled.export_model()
    compiles, queries = counting.compiles, counting.queries
    imported = core.import_model(blob, "HETERO")
    assert (counting.compiles, counting.queries) == (compiles, queries)
    assert imported.get_property("EXECUTION_DEVICES") == ["COUNTING", "TEMPLATE"]
    assert (imported.get_property("HETERO_NUMBER_OF_SUBMODELS")
            == compiled.get_property("HETERO_NUMBER_OF_SUBMODELS"))
    for want, got in zip(_outputs(compiled, feeds), _outputs(imported, feeds), strict=True):
        assert want.tobytes() == got.tobytes()
    assert imported.export_model() == blob  # an import exports what it was made from
    assert core.import_model(bytearray(blob), "HETERO").get_property("PERF_COUNT") is False
    assert core.import_model(blob, "HETERO", {"PERF_COUNT": True}).get_property("PERF_COUNT")


def test_a_part_that_cannot_export_is_compiled_again(setup) -> None:
    core, _, proto, feeds = setup
    plain = NoExportPlugin("PLAIN")
    core.register_plugin(plain)
    compiled = core.compile_model(proto, "HETERO:PLAIN,NUMPY",
                                  {"AFFINITY": _alternating(proto, "PLAIN", "NUMPY")})
    blob = compiled.export_model()
    before = plain.compiles
    imported = core.import_model(blob, "HETERO")
    parts = sum(sub.device == "PLAIN" for sub in compiled.partition.subgraphs)
    assert plain.compiles - before == parts
    for want, got in zip(_outputs(compiled, feeds), _outputs(imported, feeds), strict=True):
        assert want.tobytes() == got.tobytes()


@pytest.mark.parametrize("damage", ["truncated", "flipped", "magic", "empty"])
def test_damaged_blobs_are_refused(setup, damage: str) -> None:
    core, _, proto, _ = setup
    blob = bytearray(core.compile_model(proto, "HETERO:NUMPY,TEMPLATE", {
        "AFFINITY": _alternating(proto, "NUMPY", "TEMPLATE")}).export_model())
    if damage == "truncated":
        blob = blob[: len(blob) - 100]
    elif damage == "flipped":
        blob[-50] ^= 0xFF
    elif damage == "magic":
        blob[:4] = b"XXXX"
    else:
        blob = bytearray()
    with pytest.raises(InvalidModelError, match="HETERO: import_model: the blob is refused"):
        core.import_model(bytes(blob), "HETERO")


def test_a_changed_manifest_is_refused(setup) -> None:
    core, _, proto, _ = setup
    blob = core.compile_model(proto, "HETERO:NUMPY,TEMPLATE", {
        "AFFINITY": _alternating(proto, "NUMPY", "TEMPLATE")}).export_model()
    head = blob[: blob.index(b'"subgraphs"')]
    changed = head.replace(b'"NUMPY"', b'"OTHER"', 1) + blob[len(head):]
    with pytest.raises(InvalidModelError, match="truncated or corrupt"):
        core.import_model(changed, "HETERO")


def test_core_cache_dir_keeps_hetero_models(setup, tmp_path) -> None:
    core, counting, proto, feeds = setup
    config = {"AFFINITY": _alternating(proto, "COUNTING", "TEMPLATE"),
              "CACHE_DIR": str(tmp_path)}
    cold = core.compile_model(proto, "HETERO:COUNTING,TEMPLATE", config)
    assert cold.get_property("LOADED_FROM_CACHE") is False
    compiles = counting.compiles
    warm = core.compile_model(proto, "HETERO:COUNTING,TEMPLATE", config)
    assert warm.get_property("LOADED_FROM_CACHE") is True and counting.compiles == compiles
    for want, got in zip(_outputs(cold, feeds), _outputs(warm, feeds), strict=True):
        assert want.tobytes() == got.tobytes()
    core.set_property("COUNTING", {"INFERENCE_NUM_THREADS": 1})  # a device's setting changed
    again = core.compile_model(proto, "HETERO:COUNTING,TEMPLATE", config)
    assert again.get_property("LOADED_FROM_CACHE") is False
