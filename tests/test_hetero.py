"""HETERO: affinities, partition, compile, the request as stages, errors, release."""

from __future__ import annotations

import random
import threading
from typing import Any

import anyio
import networkx as nx
import numpy as np
import pytest

import aioinfer
from aioinfer import models
from aioinfer.errors import (
    DeviceNotFoundError,
    InvalidPropertyValueError,
    SubgraphCompileError,
    UnsupportedOperationError,
)
from aioinfer.plugins.numpy import NumpyPlugin

from .models_small import add_relu, linear, unknown_op

HETERO = "HETERO:NUMPY,TEMPLATE"


def _alternating(model: aioinfer.Model) -> dict[str, str]:
    return {node.name: ("NUMPY" if k % 2 == 0 else "TEMPLATE")
            for k, node in enumerate(model.proto.graph.node)}


@pytest.fixture(scope="module")
def core() -> aioinfer.Core:
    return aioinfer.Core()


@pytest.fixture(scope="module")
def cnn(core: aioinfer.Core) -> aioinfer.Model:
    return core.read_model(models.get("cnn"))


def _x(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((1, 3, 224, 224), dtype=np.float32)


# -- device strings and bad input ------------------------------------------------------------
def test_unknown_device_in_the_list_is_named(core):
    with pytest.raises(DeviceNotFoundError, match="NOPE"):
        core.compile_model(add_relu(), "HETERO:NUMPY,NOPE")


def test_empty_device_list_is_refused(core):
    with pytest.raises(DeviceNotFoundError, match="at least one device"):
        core.compile_model(add_relu(), "HETERO:")
    with pytest.raises(DeviceNotFoundError, match="needs devices"):
        core.compile_model(add_relu(), "HETERO")
    with pytest.raises(DeviceNotFoundError, match="listed twice"):
        core.compile_model(add_relu(), "HETERO:NUMPY,numpy")


def test_a_node_no_device_runs_names_the_node_its_op_and_the_devices(core):
    with pytest.raises(UnsupportedOperationError) as info:
        core.compile_model(unknown_op(), HETERO)
    assert info.value.node == "mystery" and info.value.op_type == "Frobnicate"
    assert "com.example.Frobnicate" in str(info.value) and "NUMPY, TEMPLATE" in str(info.value)


def test_a_device_failing_on_its_subgraph_is_named_and_nothing_leaks(core):
    class Broken(NumpyPlugin):
        def compile_model(self, model: Any, config: Any) -> Any:
            raise UnsupportedOperationError("broken on purpose", device=self.name)

    local = aioinfer.Core()
    local.register_plugin(Broken("BROKEN"), "BROKEN")
    before = threading.active_count()
    with pytest.raises(SubgraphCompileError) as info:
        local.compile_model(add_relu(), "HETERO:NUMPY,BROKEN",
                            {"AFFINITY": {"add": "NUMPY", "relu": "BROKEN"}})
    assert info.value.device == "BROKEN" and info.value.subgraph == 1
    assert "'relu'" in str(info.value) and "broken on purpose" in str(info.value)
    assert local.get_property("NUMPY", "SUPPORTED_PROPERTIES")
    numpy_plugin = local._plugin("NUMPY")
    assert not numpy_plugin.executors._leases  # the NUMPY subgraph compiled first was released
    assert threading.active_count() <= before


def test_affinity_overrides_are_checked(core):
    with pytest.raises(InvalidPropertyValueError, match="'nope'"):
        core.compile_model(add_relu(), HETERO, {"AFFINITY": {"nope": "NUMPY"}})
    with pytest.raises(InvalidPropertyValueError, match="not one of"):
        core.compile_model(add_relu(), HETERO, {"AFFINITY": {"add": "NUMPY.0"}})


# -- partition and inspection -------------------------------------------------------------------
def test_query_model_answers_the_merged_affinities(core):
    merged = core.query_model(add_relu(), HETERO)
    assert merged == {"add": "NUMPY", "relu": "NUMPY"}
    assert core.query_model(unknown_op(), HETERO) == {}
    assert core.query_model(add_relu(), "HETERO:TEMPLATE,NUMPY") == {
        "add": "TEMPLATE", "relu": "TEMPLATE"}


def test_partition_is_inspectable(core, cnn):
    compiled = core.compile_model(cnn, HETERO, {"AFFINITY": _alternating(cnn)})
    count = compiled.get_property("HETERO_NUMBER_OF_SUBMODELS")
    assert count > 10 and compiled.get_property("EXECUTION_DEVICES") == ["NUMPY", "TEMPLATE"]
    assert isinstance(compiled.partition.graph(), nx.DiGraph)
    assert nx.is_directed_acyclic_graph(compiled.partition.graph())
    dot = compiled.to_dot()
    assert dot.startswith("digraph") and dot.count("label=\"#") == count  # one cluster each
    assert compiled.device == "HETERO:NUMPY,TEMPLATE"
    stage_graph = compiled.create_infer_request().stage_graph
    assert nx.is_directed_acyclic_graph(stage_graph.as_networkx())
    # to, transfers, one stage per subgraph, outputs
    assert sum(s.name.startswith("subgraph:") for s in stage_graph.stages) == count
    compiled.release()


def test_single_device_hetero_is_one_subgraph(core):
    compiled = core.compile_model(linear(), HETERO)
    assert compiled.get_property("HETERO_NUMBER_OF_SUBMODELS") == 1
    x = np.ones((3, 8), np.float32)
    expected = core.compile_model(linear(), "NUMPY")(x)[0]
    np.testing.assert_array_equal(compiled(x)[0], expected)  # dynamic batch passes through
    np.testing.assert_array_equal(compiled(np.ones((5, 8), np.float32))[0].shape, (5, 4))


# -- results ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cnn", "bert", "gpt2", "mlp"])
def test_alternating_affinities_match_numpy(core, name):
    from aioinfer.models.inputs import example_inputs

    proto = models.get(name)
    model = core.read_model(proto)
    inputs = example_inputs(proto)
    expected = core.compile_model(model, "NUMPY")(inputs)
    compiled = core.compile_model(model, HETERO, {"AFFINITY": _alternating(model)})
    assert compiled.get_property("HETERO_NUMBER_OF_SUBMODELS") > 2
    got = compiled.create_infer_request().infer(inputs)
    for k in range(len(compiled.outputs)):
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-4, atol=1e-5)
    compiled.release()


@pytest.mark.anyio
async def test_concurrent_hetero_requests_get_their_own_results(core, cnn):
    compiled = core.compile_model(cnn, HETERO, {"AFFINITY": _alternating(cnn)})
    reference = core.compile_model(cnn, "NUMPY")
    inputs = [_x(k) for k in range(6)]
    expected = [reference(x)[0] for x in inputs]
    results: dict[int, np.ndarray] = {}

    async def one(k: int) -> None:
        results[k] = (await compiled.infer_async(inputs[k]))[0]

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for k in range(len(inputs)):
                tg.start_soon(one, k)
    for k, want in enumerate(expected):
        np.testing.assert_allclose(results[k], want, rtol=1e-4, atol=1e-5)
    compiled.release()


@pytest.mark.anyio
async def test_cancellation_at_random_points_leaves_hetero_requests_reusable(core, cnn):
    compiled = core.compile_model(cnn, HETERO, {"AFFINITY": _alternating(cnn)})
    request = compiled.create_infer_request()
    x = _x(3)
    expected = core.compile_model(cnn, "NUMPY")(x)[0]
    rng = random.Random(0)
    cancelled = 0
    with anyio.fail_after(120):
        for _ in range(12):
            with anyio.move_on_after(rng.uniform(0, 0.03)) as scope:
                result = await request.infer_async(x)
                np.testing.assert_allclose(result[0], expected, rtol=1e-4, atol=1e-5)
            cancelled += scope.cancelled_caught
            assert not request.busy
            assert not any(sub.busy for sub in request._sync.subrequests)  # type: ignore[attr-defined]
        np.testing.assert_allclose((await request.infer_async(x))[0], expected, rtol=1e-4,
                                   atol=1e-5)
    assert cancelled > 0
    compiled.release()


def test_perf_count_reports_subgraphs_transfers_and_nodes(core, cnn):
    compiled = core.compile_model(cnn, HETERO, {"AFFINITY": _alternating(cnn),
                                                "PERF_COUNT": True})
    request = compiled.create_infer_request()
    request.infer(_x())
    names = {e["node_name"] for e in request.profiling_info}
    assert "subgraph:0" in names and "0->1" in names and "outputs" in names
    assert any(e["node_type"] == "Conv" for e in request.profiling_info)  # a node entry
    request.start_async(_x())
    request.wait()
    kinds = {e["exec_type"] for e in request.profiling_info if e["node_type"] == "Stage"}
    assert any("subgraph" in k for k in kinds) and any("stream" in k for k in kinds)
    compiled.set_property({"PERF_COUNT": False})
    request.infer(_x())
    assert request.profiling_info == []
    compiled.release()


def test_release_cascades_to_the_subgraphs(core, cnn):
    compiled = core.compile_model(cnn, HETERO, {"AFFINITY": _alternating(cnn)})
    compiled(_x())
    subs = compiled.submodels()
    compiled.release()
    assert compiled.released and all(sub.released for sub in subs)
