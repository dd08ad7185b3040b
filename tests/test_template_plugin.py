"""The TEMPLATE plugin: properties, query/compile, errors, stages, profiling, export/import,
custom operations and local functions, and requests running at once on several threads."""

from __future__ import annotations

import threading

import anyio
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference.op_run import OpRun

import aioinfer
from aioinfer import errors
from aioinfer.plugins.template import TemplatePlugin
from aioinfer.runtime.executors import HOST

F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, opset=17, domains=(), functions=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    imports = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domains)]
    return helper.make_model(graph, opset_imports=imports, functions=list(functions))


def _vi(name: str, shape, elem=F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def add_relu() -> onnx.ModelProto:
    return _model([helper.make_node("Add", ["a", "b"], ["c"], name="add"),
                   helper.make_node("Relu", ["c"], ["d"], name="relu")],
                  [_vi("a", [2, 3]), _vi("b", [2, 3])], [_vi("d", [2, 3])])


def custom_op_model() -> onnx.ModelProto:
    return _model([helper.make_node("Twice", ["x"], ["y"], domain="com.example", name="twice")],
                  [_vi("x", [3])], [_vi("y", [3])], domains=["com.example"])


class Twice(OpRun):
    op_domain = "com.example"

    def _run(self, x):
        return (x * 2,)


@pytest.fixture
def core() -> aioinfer.Core:
    core = aioinfer.Core()
    core.register_plugin(TemplatePlugin("TEMPLATE"))
    return core


def _inputs(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a": rng.standard_normal((2, 3), dtype=np.float32),
            "b": rng.standard_normal((2, 3), dtype=np.float32)}


def _expected(inputs: dict[str, np.ndarray]) -> np.ndarray:
    return np.maximum(inputs["a"] + inputs["b"], 0)


# -- properties ------------------------------------------------------------------------------
def test_plugin_properties_are_validated(core: aioinfer.Core) -> None:
    supported = core.get_property("TEMPLATE", "SUPPORTED_PROPERTIES")
    assert supported["FULL_DEVICE_NAME"] == "RO" and supported["PERF_COUNT"] == "RW"
    assert "reference" in core.get_property("TEMPLATE", "FULL_DEVICE_NAME")
    core.set_property("TEMPLATE", {"PERFORMANCE_HINT": "throughput", "NUM_STREAMS": "2"})
    assert core.get_property("TEMPLATE", "NUM_STREAMS") == 2
    with pytest.raises(errors.ReadOnlyPropertyError, match="FULL_DEVICE_NAME"):
        core.set_property("TEMPLATE", {"FULL_DEVICE_NAME": "x"})
    with pytest.raises(errors.UnknownPropertyError, match="NO_SUCH_KEY"):
        core.get_property("TEMPLATE", "NO_SUCH_KEY")
    with pytest.raises(errors.InvalidPropertyValueError, match="NUM_STREAMS"):
        core.set_property("TEMPLATE", {"NUM_STREAMS": -1})


def test_compiled_model_properties(core: aioinfer.Core) -> None:
    compiled = core.compile_model(add_relu(), "TEMPLATE", {"NUM_STREAMS": 3})
    assert compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") == 3
    assert compiled.executor.workers == 3  # type: ignore[attr-defined]
    assert compiled.get_property("EXECUTION_DEVICES") == ["TEMPLATE"]
    assert compiled.get_property("MODEL_NAME") == "g"
    with pytest.raises(errors.ReadOnlyPropertyError, match="NUM_STREAMS"):
        compiled.set_property({"NUM_STREAMS": 1})  # the executor is built at compile time
    compiled.set_property({"PERF_COUNT": True})
    assert compiled.get_property("PERF_COUNT") is True
    with pytest.raises(errors.InvalidPropertyValueError):
        core.compile_model(add_relu(), "TEMPLATE", {"PERF_COUNT": "maybe"})


# -- query and compile -----------------------------------------------------------------------
def test_query_model_answers_per_node(core: aioinfer.Core) -> None:
    then = helper.make_graph([helper.make_node("Twice", ["x"], ["t"], domain="com.example")],
                             "then", [], [_vi("t", [3])])
    other = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                              [_vi("e", [3])])
    model = _model(
        [helper.make_node("Abs", ["x"], ["ax"], name="abs"),
         helper.make_node("Twice", ["ax"], ["y"], domain="com.example", name="twice"),
         helper.make_node("If", ["c"], ["z"], name="if", then_branch=then, else_branch=other)],
        [_vi("x", [3]), _vi("c", [], TensorProto.BOOL)], [_vi("y", [3]), _vi("z", [3])],
        domains=["com.example"],
    )
    assert core.query_model(model, "TEMPLATE") == {"abs": "TEMPLATE"}
    core._plugin("TEMPLATE").add_operations([Twice])  # type: ignore[attr-defined]
    assert set(core.query_model(model, "TEMPLATE")) == {"abs", "twice", "if"}


def test_unsupported_op_names_node_and_op(core: aioinfer.Core) -> None:
    with pytest.raises(errors.UnsupportedOperationError, match="'twice'.*Twice") as info:
        core.compile_model(custom_op_model(), "TEMPLATE")
    assert (info.value.node, info.value.op_type, info.value.device) == (
        "twice", "Twice", "TEMPLATE")


def test_custom_operation(core: aioinfer.Core) -> None:
    plugin = core._plugin("TEMPLATE")
    with pytest.raises(TypeError, match="OpRun"):
        plugin.add_operations([object])  # type: ignore[attr-defined]
    plugin.add_operations([Twice])  # type: ignore[attr-defined]
    compiled = core.compile_model(custom_op_model(), "TEMPLATE")
    out = compiled({"x": np.array([1, 2, 3], np.float32)})
    np.testing.assert_array_equal(out["y"], [2, 4, 6])


def test_model_local_function(core: aioinfer.Core) -> None:
    square_plus = helper.make_function(
        "local", "SquarePlus", ["x", "y"], ["z"],
        [helper.make_node("Mul", ["x", "x"], ["xx"]), helper.make_node("Add", ["xx", "y"], ["z"])],
        [helper.make_opsetid("", 17)],
    )
    model = _model([helper.make_node("SquarePlus", ["a", "b"], ["d"], domain="local")],
                   [_vi("a", [2, 3]), _vi("b", [2, 3])], [_vi("d", [2, 3])],
                   domains=["local"], functions=[square_plus])
    assert len(core.query_model(model, "TEMPLATE")) == 1
    inputs = _inputs()
    out = core.compile_model(model, "TEMPLATE")(inputs)
    np.testing.assert_allclose(out["d"], inputs["a"] ** 2 + inputs["b"], rtol=1e-6)


def test_deprecated_scatter_runs_as_scatter_elements(core: aioinfer.Core) -> None:
    model = _model([helper.make_node("Scatter", ["data", "idx", "upd"], ["y"], axis=1)],
                   [_vi("data", [1, 5]), _vi("idx", [1, 2], TensorProto.INT64),
                    _vi("upd", [1, 2])], [_vi("y", [1, 5])], opset=9)
    out = core.compile_model(model, "TEMPLATE")(
        {"data": np.zeros((1, 5), np.float32), "idx": np.array([[1, 3]]),
         "upd": np.array([[1.5, 2.5]], np.float32)})
    np.testing.assert_array_equal(out["y"], [[0, 1.5, 0, 2.5, 0]])


def test_empty_optional_has_no_element(core: aioinfer.Core) -> None:
    # onnx.reference's own Optional wraps its value in a list, so an empty one reads as present.
    opt_type = helper.make_tensor_type_proto(F, [2])
    model = _model([helper.make_node("Optional", [], ["o"], type=opt_type),
                    helper.make_node("OptionalHasElement", ["o"], ["has"])],
                   [], [_vi("has", [], TensorProto.BOOL)], opset=18)
    assert core.compile_model(model, "TEMPLATE")({})["has"].item() is False


def _loop_model() -> onnx.ModelProto:
    """Loop(n) carrying a sum, scanning a 2x3 int32 block per iteration, with no condition."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "one"], ["acc_out"]),
         helper.make_node("Cast", ["i"], ["i32"], to=TensorProto.INT32),
         helper.make_node("Expand", ["i32", "shape"], ["block"])],
        "body", [_vi("i", [], TensorProto.INT64), _vi("cond_in", [], TensorProto.BOOL),
                 _vi("acc_in", [])],
        [_vi("cond_out", [], TensorProto.BOOL), _vi("acc_out", []),
         _vi("block", [2, 3], TensorProto.INT32)],
        initializer=[helper.make_tensor("one", F, [], [1.0]),
                     helper.make_tensor("shape", TensorProto.INT64, [2], [2, 3])])
    model = _model([helper.make_node("Loop", ["n", "", "a0"], ["a", "blocks"], body=body)],
                   [_vi("n", [], TensorProto.INT64), _vi("a0", [])],
                   [_vi("a", []), _vi("blocks", ["N", 2, 3], TensorProto.INT32)])
    model.ir_version = 8  # what the onnxruntime oracle reads
    return model


@pytest.mark.parametrize("trips", [3, 0])
def test_loop_stacks_scan_outputs_as_onnxruntime(core: aioinfer.Core, trips: int) -> None:
    # onnx.reference vstacks (3 blocks of 2x3 became 6x3) and fails on zero iterations
    import onnxruntime as ort

    model = _loop_model()
    feeds = {"n": np.array(trips, np.int64), "a0": np.array(5.0, np.float32)}
    got = core.compile_model(model, "TEMPLATE")(feeds)
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feeds)
    for name, expected in zip(("a", "blocks"), want, strict=True):
        assert got[name].dtype == expected.dtype and got[name].shape == expected.shape
        np.testing.assert_array_equal(got[name], expected)
    assert got["blocks"].shape == (trips, 2, 3)


def _scan_model(steps: int) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Scan-9+ over axis 1 of xs, backwards, stacking its outputs on the last axis reversed."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "x"], ["s2"]), helper.make_node("Mul", ["s2", "x"], ["y"])],
        "body", [_vi("s", [4]), _vi("x", [4])], [_vi("s2", [4]), _vi("y", [4])])
    node = helper.make_node("Scan", ["init", "xs"], ["final", "ys"], body=body,
                            num_scan_inputs=1, scan_input_axes=[1], scan_input_directions=[1],
                            scan_output_axes=[-1], scan_output_directions=[1])
    model = _model([node], [_vi("init", [4]), _vi("xs", [4, steps])],
                   [_vi("final", [4]), _vi("ys", [4, steps])])
    model.ir_version = 8
    rng = np.random.default_rng(steps)
    return model, {"init": rng.standard_normal(4).astype(np.float32),
                   "xs": rng.standard_normal((4, steps)).astype(np.float32)}


@pytest.mark.parametrize("steps", [3, 0])
def test_scan_axes_and_directions(core: aioinfer.Core, steps: int) -> None:
    # onnx.reference raises on scan axes or directions other than 0, and on zero steps
    model, feeds = _scan_model(steps)
    got = core.compile_model(model, "TEMPLATE")(feeds)
    want = core.compile_model(model, "NUMPY")(feeds)  # checked against onnxruntime elsewhere
    for name in ("final", "ys"):
        assert got[name].shape == want[name].shape and got[name].dtype == want[name].dtype
        np.testing.assert_allclose(got[name], want[name], rtol=1e-6)
    if steps:
        import onnxruntime as ort

        ref = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"]).run(None, feeds)
        np.testing.assert_allclose(got["ys"], ref[1], rtol=1e-6)


# -- running -----------------------------------------------------------------------------------
def test_stages_run_on_host_and_device_executors(core: aioinfer.Core) -> None:
    compiled = core.compile_model(add_relu(), "TEMPLATE")
    stages = compiled.create_sync_request().stages()
    assert [s.name for s in stages] == ["preprocess", "infer", "postprocess"]
    assert [s.executor for s in stages] == [HOST, compiled.executor, HOST]  # type: ignore


def test_infer_matches_numpy(core: aioinfer.Core) -> None:
    request = core.compile_model(add_relu(), "TEMPLATE").create_infer_request()
    for seed in range(3):
        inputs = _inputs(seed)
        np.testing.assert_array_equal(request.infer(inputs)["d"], _expected(inputs))


def test_runtime_failure_names_the_node(core: aioinfer.Core) -> None:
    model = _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape")],
                   [_vi("x", [6]), _vi("s", [2], TensorProto.INT64)], [_vi("y", ["r", "c"])])
    request = core.compile_model(model, "TEMPLATE").create_infer_request()
    with pytest.raises(errors.InferenceError, match="'reshape'.*Reshape.*TEMPLATE") as info:
        request.infer({"x": np.arange(6, dtype=np.float32), "s": np.array([4, 4])})
    assert info.value.node == "reshape" and info.value.device == "TEMPLATE"
    out = request.infer({"x": np.arange(6, dtype=np.float32), "s": np.array([2, 3])})
    assert out["y"].shape == (2, 3)  # the request is reusable after a failure


def test_string_outputs_are_object_arrays(core: aioinfer.Core) -> None:
    model = _model([helper.make_node("StringNormalizer", ["x"], ["y"],
                                     case_change_action="UPPER")],
                   [_vi("x", [2], TensorProto.STRING)], [_vi("y", ["n"], TensorProto.STRING)])
    out = core.compile_model(model, "TEMPLATE")({"x": np.array(["ab", "cd"], dtype=object)})
    assert out["y"].dtype == object and list(out["y"]) == ["AB", "CD"]


def test_perf_count_times_every_node(core: aioinfer.Core) -> None:
    compiled = core.compile_model(add_relu(), "TEMPLATE", {"PERF_COUNT": True})
    request = compiled.create_infer_request()
    request.infer(_inputs())
    info = request.profiling_info
    nodes = [e for e in info if e["node_type"] != "Stage"]
    assert [(e["node_name"], e["node_type"]) for e in nodes] == [("add", "Add"),
                                                                  ("relu", "Relu")]
    assert all(e["real_time"] >= 0 and e["status"] == "EXECUTED" for e in nodes)
    quiet = core.compile_model(add_relu(), "TEMPLATE").create_infer_request()
    quiet.infer(_inputs())
    assert quiet.profiling_info == []


def test_requests_run_at_once_on_threads(core: aioinfer.Core) -> None:
    compiled = core.compile_model(add_relu(), "TEMPLATE", {"NUM_STREAMS": 4})
    failures: list[str] = []

    def worker(seed: int) -> None:
        request = compiled.create_infer_request()
        for k in range(20):
            inputs = _inputs(seed * 100 + k)
            if not np.array_equal(request.infer(inputs)["d"], _expected(inputs)):
                failures.append(f"thread {seed} run {k}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.anyio
async def test_infer_async_overlapping_requests(core: aioinfer.Core) -> None:
    compiled = core.compile_model(add_relu(), "TEMPLATE", {"NUM_STREAMS": 2})
    results: dict[int, np.ndarray] = {}

    async def one(seed: int) -> None:
        request = compiled.create_infer_request()
        results[seed] = (await request.infer_async(_inputs(seed)))["d"]

    async with anyio.create_task_group() as group:
        for seed in range(4):
            group.start_soon(one, seed)
    for seed, value in results.items():
        np.testing.assert_array_equal(value, _expected(_inputs(seed)))
    assert len(results) == 4


# -- export / import -----------------------------------------------------------------------------
def test_export_import_round_trip(core: aioinfer.Core) -> None:
    compiled = core.compile_model(add_relu(), "TEMPLATE",
                                  {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2})
    blob = compiled.export_model()
    plugin = TemplatePlugin()
    imported = plugin.import_model(blob, {"PERF_COUNT": True})
    assert imported.get_property("NUM_STREAMS") == 2
    assert imported.get_property("PERF_COUNT") is True
    assert str(imported.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"
    inputs = _inputs(7)
    np.testing.assert_array_equal(imported(inputs)["d"], compiled(inputs)["d"])


@pytest.mark.parametrize("blob", [b"", b"not a blob", b"AIOINFER-TMPL-v1\xff\xff\xff\x00{}"])
def test_import_rejects_foreign_blobs(blob: bytes) -> None:
    with pytest.raises(errors.InvalidModelError, match="TEMPLATE: import_model"):
        TemplatePlugin().import_model(blob, {})
