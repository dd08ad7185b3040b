"""The plugin-EP hooks the adapter honors, each with a real EP library: the example EP's
kernels (NaN/inf constants, every op it fuses, broadcasting, no cycles through other nodes),
the factory's allocator, data transfer and sync stream in a HETERO run, on_run_end after a
failed run, is_stream_aware, and NHWC layout conversion (tests/ort_face/nhwc_ep.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import aioinfer
import aioinfer.onnxruntime as ort
from aioinfer import errors
from aioinfer.ort.ep.examples import fused_elementwise
from aioinfer.runtime.streams import HOST_STREAM

from . import nhwc_ep, recording_ep
from .conftest import oracle

EXAMPLE = "aioinfer.ort.ep.examples.fused_elementwise"


@pytest.fixture
def numpy_core() -> aioinfer.Core:
    core = aioinfer.Core()
    core.set_property("CPU", {"MULTI_DEVICE_PRIORITIES": "NUMPY"})
    return core


@pytest.fixture
def example() -> Iterator[str]:
    ort.register_execution_provider_library("FusedElementwise", EXAMPLE)
    try:
        yield "FusedElementwise"
    finally:
        ort.unregister_execution_provider_library("FusedElementwise")


def _model(nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray],
           shape: list[int], outputs: list[str], opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)], [],
        initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k)
                     for k, v in consts.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    inferred = {v.name: v for v in onnx.shape_inference.infer_shapes(proto).graph.value_info}
    proto.graph.output.extend(inferred[o] for o in outputs)  # typed and shaped outputs
    return proto


def _session(proto: onnx.ModelProto, library: str, core: aioinfer.Core,
             options: dict[str, str] | None = None) -> ort.InferenceSession:
    session_options = ort.SessionOptions()
    session_options.add_provider_for_devices(
        [d for d in ort.get_ep_devices() if d.ep_name == library], options or {})
    return ort.InferenceSession(proto.SerializeToString(), session_options, core=core)


def _claimed(session: ort.InferenceSession, device: str) -> bool:
    parts = [session.compiled_model, *session.compiled_model.submodels()]
    return any(p.device == device for p in parts)


@pytest.mark.parametrize("compiler", ["numba", "numpy"])
def test_nan_and_inf_constants(example: str, numpy_core: aioinfer.Core, compiler: str) -> None:
    """NaN and +-inf constants (scalars, Clip bounds, an attribute): the generated source
    once wrote them as ``np.float32(nan)``, a name the kernel's module does not have."""
    consts = {"inf": np.inf, "ninf": -np.inf, "nan": np.nan, "one": 1.0}
    nodes = [helper.make_node("Min", ["x", "inf"], ["a"], name="min"),
             helper.make_node("Max", ["a", "ninf"], ["b"], name="max"),
             helper.make_node("Clip", ["b", "ninf", "inf"], ["c"], name="clip"),
             helper.make_node("Mul", ["c", "inf"], ["y_inf"], name="mul_inf"),
             helper.make_node("Mul", ["c", "nan"], ["d"], name="mul_nan"),
             helper.make_node("Add", ["d", "one"], ["y_nan"], name="add"),
             helper.make_node("LeakyRelu", ["c"], ["e"], name="lrelu", alpha=float("inf")),
             helper.make_node("Div", ["e", "inf"], ["y_div"], name="div")]
    proto = _model(nodes, consts, [4, 33], ["y_inf", "y_nan", "y_div"])
    session = _session(proto, example, numpy_core, {"compiler": compiler})
    assert _claimed(session, "FUSEDELEMENTWISE")
    x = np.random.default_rng(0).standard_normal((4, 33)).astype(np.float32)
    x[0, :3] = [np.nan, np.inf, -np.inf]
    x[1, 0] = 0.0
    got = session.run(None, {"x": x})
    want = oracle(proto, {"x": x})
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=0)  # NaNs in the same places
    assert np.isnan(got[1]).all() and np.isinf(got[0][2:]).any()


def _every_op() -> onnx.ModelProto:
    """Every op the example EP fuses, with per-column constants broadcast over rows."""
    rng = np.random.default_rng(1)
    consts = {"g": rng.uniform(0.5, 1.5, 24), "b": rng.standard_normal(24),
              "col": rng.standard_normal((3, 1)), "two": 2.0, "three": 3.0, "half": 0.5,
              "p": 1.7, "lo": -0.5, "hi": 0.75, "one": 1.0}
    n = helper.make_node
    nodes = [n("Mul", ["x", "g"], ["a"]), n("Add", ["a", "b"], ["c"]),
             n("Sub", ["c", "col"], ["d"]), n("Abs", ["d"], ["ad"]),
             n("Add", ["ad", "one"], ["ad1"]), n("Log", ["ad1"], ["lg"]),
             n("Sqrt", ["ad"], ["sq"]), n("Pow", ["d", "two"], ["p2"]),
             n("Pow", ["d", "three"], ["p3"]), n("Pow", ["ad", "half"], ["ph"]),
             n("Pow", ["ad1", "p"], ["pg"]), n("Sigmoid", ["d"], ["sg"]),
             n("Tanh", ["d"], ["th"]), n("Exp", ["d"], ["ex"]), n("Erf", ["d"], ["er"]),
             n("Softplus", ["d"], ["sp"]), n("Neg", ["d"], ["ng"]),
             n("Reciprocal", ["ad1"], ["rc"]), n("Relu", ["d"], ["rl"]),
             n("LeakyRelu", ["d"], ["lr"], alpha=0.2), n("Elu", ["d"], ["el"], alpha=0.7),
             n("HardSigmoid", ["d"], ["hs"], alpha=0.3, beta=0.4),
             n("Clip", ["d", "lo", "hi"], ["cl"]), n("Max", ["sg", "th"], ["mx"]),
             n("Min", ["ex", "sp"], ["mn"]), n("Div", ["er", "ad1"], ["dv"]),
             n("Identity", ["cl"], ["id"])]
    terms = ["lg", "sq", "p2", "p3", "ph", "pg", "ng", "rc", "rl", "lr", "el", "hs", "id",
             "mx", "mn", "dv"]
    total = terms[0]
    for k, term in enumerate(terms[1:]):
        nodes.append(n("Add", [total, term], [f"s{k}"]))
        total = f"s{k}"
    for k, node in enumerate(nodes):
        node.name = f"n{k}"
    nodes[-1].output[0] = "y"
    return _model(nodes, consts, [3, 24], ["y", "cl"])


@pytest.mark.parametrize("compiler", ["numba", "numpy"])
def test_every_fused_op_matches_onnxruntime(example: str, numpy_core: aioinfer.Core,
                                            compiler: str) -> None:
    proto = _every_op()
    session = _session(proto, example, numpy_core, {"compiler": compiler})
    assert session.device == "FUSEDELEMENTWISE"  # one group: the whole model
    x = np.random.default_rng(2).standard_normal((3, 24)).astype(np.float32) * 2
    for got, want in zip(session.run(None, {"x": x}), oracle(proto, {"x": x}), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_kernel_is_one_loop_nest_over_the_broadcast_output() -> None:
    model = aioinfer.Core().read_model(_every_op())
    groups = fused_elementwise.claim_groups(model.proto.graph, model)
    assert len(groups) == 1
    sub = model.extract(groups[0], ["x"], ["y", "cl"])
    group = fused_elementwise.group_of(sub)
    source = fused_elementwise.codegen.source(group)
    # [3, 24]: x full, g/b per column, col per row: two loops, 3 x 24, no call to libm exp
    assert "for i0 in range(3):" in source and "for i1 in range(24):" in source
    assert source.count(" for ") == 2 and "np.exp(" not in source
    assert "y0[" in source and "y1[" in source


def test_no_group_leaves_itself_and_comes_back(example: str,
                                               numpy_core: aioinfer.Core) -> None:
    """``x*2 -> ReduceMean -> Sub(x*2, mean) -> Relu``: Mul and Sub are connected, but a
    path leaves through ReduceMean (NUMPY's) and returns: they must be separate groups."""
    n = helper.make_node
    nodes = [n("Mul", ["x", "two"], ["a"], name="mul"),
             n("Sigmoid", ["a"], ["s"], name="sig"),
             n("ReduceMean", ["s"], ["m"], name="mean", axes=[1], keepdims=1),
             n("Sub", ["s", "m"], ["d"], name="sub"), n("Relu", ["d"], ["y"], name="relu")]
    proto = _model(nodes, {"two": 2.0}, [4, 16], ["y"])
    model = numpy_core.read_model(proto)
    assert fused_elementwise.claim_groups(model.proto.graph, model) == [["mul", "sig"],
                                                                       ["sub", "relu"]]
    session = _session(proto, example, numpy_core)
    x = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], oracle(proto, {"x": x})[0],
                               rtol=1e-5, atol=1e-6)


def _chain() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    n = helper.make_node
    nodes = [n("MatMul", ["x", "W"], ["h"], name="mm"), n("Mul", ["h", "k"], ["a"], name="mul"),
             n("Sigmoid", ["a"], ["s"], name="sig"), n("MatMul", ["s", "W"], ["y"], name="mm2")]
    return _model(nodes, {"W": rng.standard_normal((16, 16)) / 4, "k": 1.5}, [2, 16], ["y"])


@pytest.fixture
def recording() -> Iterator[str]:
    recording_ep.CALLS.clear()
    recording_ep.FAIL_COMPUTE[0] = False
    ort.register_execution_provider_library("Recording", "tests.ort_face.recording_ep")
    try:
        yield "Recording"
    finally:
        recording_ep.FAIL_COMPUTE[0] = False
        recording_ep.STREAM_AWARE[0] = True
        ort.unregister_execution_provider_library("Recording")


def test_allocator_transfer_and_stream_are_used_in_a_hetero_run(
        recording: str, numpy_core: aioinfer.Core) -> None:
    proto = _chain()
    session = _session(proto, recording, numpy_core)
    assert session.device == "HETERO:RECORDING,CPU"
    plugin = numpy_core._plugin("RECORDING")
    assert isinstance(plugin.sync_stream(), recording_ep.RecordingStream)
    assert isinstance(plugin.data_transfer(), recording_ep.RecordingTransfer)
    calls = recording_ep.CALLS
    assert "create_allocator:host" in calls
    calls.clear()
    x = np.random.default_rng(4).standard_normal((2, 16)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], oracle(proto, {"x": x})[0],
                               rtol=1e-5, atol=1e-5)
    # the fused node's output came from the factory's allocator, NUMPY's MatMul output
    # reached the EP through the EP's data transfer, and the EP's subgraph made its
    # notification on the EP's stream
    assert "allocate:[2, 16]" in calls, calls
    assert "copy_tensors:1" in calls, calls
    assert "create_notification" in calls, calls
    assert calls.index("on_run_start") < calls.index("allocate:[2, 16]") < calls.index(
        "on_run_end")


def test_on_run_end_follows_a_failed_run(recording: str, numpy_core: aioinfer.Core) -> None:
    proto = _chain()
    session = _session(proto, recording, numpy_core)
    x = np.ones((2, 16), np.float32)
    recording_ep.CALLS.clear()
    recording_ep.FAIL_COMPUTE[0] = True
    with pytest.raises(Exception, match="failed on purpose"):
        session.run(None, {"x": x})
    calls = recording_ep.CALLS
    assert calls.index("on_run_start") < calls.index("compute") < calls.index("on_run_end")
    recording_ep.FAIL_COMPUTE[0] = False  # and the session runs again
    np.testing.assert_allclose(session.run(None, {"x": x})[0], oracle(proto, {"x": x})[0],
                               rtol=1e-5, atol=1e-5)


def test_a_factory_that_is_not_stream_aware_gets_the_host_stream(
        recording: str, numpy_core: aioinfer.Core) -> None:
    recording_ep.STREAM_AWARE[0] = False
    recording_ep.CALLS.clear()
    session = _session(_chain(), recording, numpy_core)
    plugin = numpy_core._plugin("RECORDING")
    assert plugin.sync_stream() is HOST_STREAM
    assert "is_stream_aware" in recording_ep.CALLS
    assert not any(c.startswith("create_sync_stream") for c in recording_ep.CALLS)
    x = np.ones((2, 16), np.float32)
    assert session.run(None, {"x": x})[0].shape == (2, 16)
    del session
    gc.collect()


# --- NHWC ------------------------------------------------------------------------------------

@pytest.fixture
def nhwc() -> Iterator[str]:
    nhwc_ep.SEEN.clear()
    nhwc_ep.ASKED.clear()
    ort.register_execution_provider_library("Nhwc", "tests.ort_face.nhwc_ep")
    try:
        yield "Nhwc"
    finally:
        ort.unregister_execution_provider_library("Nhwc")


def _conv_model(bias_add: bool = False, resize: bool = False) -> onnx.ModelProto:
    rng = np.random.default_rng(5)
    n = helper.make_node
    nodes = [n("Conv", ["x", "W", "B"], ["c"], name="conv")]
    last = "c"
    if bias_add:
        nodes.append(n("Add", [last, "cb"], ["cb_out"], name="bias"))
        last = "cb_out"
    nodes.append(n("Relu", [last], ["r"], name="relu"))
    if resize:
        nodes.append(n("Resize", ["r", "", "scales"], ["rs"], name="resize", mode="nearest"))
        nodes.append(n("Flatten", ["rs"], ["y"], name="flat"))
    else:
        nodes.append(n("GlobalAveragePool", ["r"], ["g"], name="gap"))
        nodes.append(n("Flatten", ["g"], ["y"], name="flat"))
    consts = {"W": rng.standard_normal((4, 8, 1, 1)), "B": rng.standard_normal(4),
              "cb": rng.standard_normal((1, 4, 1, 1)), "scales": [1.0, 1.0, 2.0, 2.0]}
    return _model(nodes, consts, [2, 8, 5, 6], ["y"], opset=13)


def test_nhwc_ep_gets_converted_nodes_and_right_results(nhwc: str,
                                                        numpy_core: aioinfer.Core) -> None:
    proto = _conv_model()
    session = _session(proto, nhwc, numpy_core)
    assert session.device == "HETERO:NHWC,CPU"  # Flatten on NUMPY
    assert ("", "Conv") in nhwc_ep.ASKED and ("", "GlobalAveragePool") in nhwc_ep.ASKED
    seen = {op: (domain, shape) for op, domain, shape in nhwc_ep.SEEN}
    assert seen["Conv"] == ("com.ms.internal.nhwc", [2, 5, 6, 8])  # input 0 in NHWC
    assert seen["GlobalAveragePool"][0] == "com.ms.internal.nhwc"
    x = np.random.default_rng(6).standard_normal((2, 8, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], oracle(proto, {"x": x})[0],
                               rtol=1e-5, atol=1e-5)


def test_nhwc_ep_answering_false_keeps_nchw(nhwc: str, numpy_core: aioinfer.Core) -> None:
    proto = _conv_model()
    session = _session(proto, nhwc, numpy_core, {"convert": "no"})
    assert {(op, domain) for op, domain, _ in nhwc_ep.SEEN} >= {("Conv", ""),
                                                               ("GlobalAveragePool", "")}
    assert [s for op, _, s in nhwc_ep.SEEN if op == "Conv"] == [[2, 8, 5, 6]]
    x = np.random.default_rng(7).standard_normal((2, 8, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], oracle(proto, {"x": x})[0],
                               rtol=1e-5, atol=1e-5)


def test_nhwc_groups_the_adapter_cannot_convert_are_refused(nhwc: str,
                                                            numpy_core: aioinfer.Core) -> None:
    # a per-channel constant [1, C, 1, 1] added inside the converted group (HETERO reports
    # the subgraph that failed; the adapter's error is the cause)
    with pytest.raises(errors.SubgraphCompileError, match="Add node 'bias'") as info:
        _session(_conv_model(bias_add=True), nhwc, numpy_core)
    assert isinstance(info.value.__cause__, errors.UnsupportedOperationError)
    assert info.value.__cause__.node == "bias"
    # Resize keeps layout in its scales: converting it on the EP's say-so is refused
    with pytest.raises(errors.SubgraphCompileError, match="Resize node 'resize'") as info:
        _session(_conv_model(resize=True), nhwc, numpy_core, {"convert": "resize"})
    assert isinstance(info.value.__cause__, errors.UnsupportedOperationError)
