"""Every option of the OpenVINO EP: what it sets, and each error path."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import aioinfer
import aioinfer.onnxruntime as ort
from aioinfer import errors
from aioinfer.ort.qdq import strip_qdq

from .conftest import feeds_for, oracle, small

OV = "OpenVINOExecutionProvider"


def session(proto: onnx.ModelProto, core: aioinfer.Core, **options: str) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=[OV],
                                provider_options=[options], core=core)


@pytest.mark.parametrize("device", ["CPU", "NUMPY", "HETERO:NUMPY,TEMPLATE",
                                    "MULTI:NUMPY,TEMPLATE", "AUTO:NUMPY,TEMPLATE", "CPU.0"])
def test_device_type(device: str, core: aioinfer.Core) -> None:
    proto = small("cnn")
    feeds = feeds_for(proto)
    sess = session(proto, core, device_type=device)
    assert sess.device == device
    np.testing.assert_allclose(sess.run(None, feeds)[0], oracle(proto, feeds)[0], rtol=1e-4,
                               atol=1e-6)
    assert sess.get_provider_options()[OV]["device_type"] == device


@pytest.mark.parametrize(("value", "match"), [
    ("CPU_FP32", "retired form; use device_type='CPU' with precision='FP32'"),
    ("GPU_FP16", "retired form; use device_type='GPU' with precision='FP16'"),
    ("HETERO:NUMPY", "at least two devices"),
    ("MULTI:NUMPY", "at least two devices"),
    ("NUMPY:TEMPLATE", "only after HETERO:, MULTI: or AUTO:"),
    ("CPU GPU", "allowed"),
])
def test_device_type_errors(value: str, match: str, core: aioinfer.Core) -> None:
    with pytest.raises(errors.InvalidPropertyValueError, match=match) as info:
        session(small("mlp"), core, device_type=value)
    assert info.value.key == "device_type"


@pytest.mark.parametrize("value", ["GPU", "GPU.0", "NPU", "HETERO:GPU,NUMPY", "CPU.7"])
def test_absent_device_names_present_ones(value: str, core: aioinfer.Core) -> None:
    with pytest.raises(errors.DeviceNotFoundError, match="present devices: .*NUMPY.*TEMPLATE"):
        session(small("mlp"), core, device_type=value)


@pytest.mark.parametrize(("key", "value", "prop", "expected"), [
    ("precision", "FP32", "INFERENCE_PRECISION_HINT", "f32"),
    ("precision", "FP16", "INFERENCE_PRECISION_HINT", "f16"),
    ("precision", "ACCURACY", "INFERENCE_PRECISION_HINT", "f32"),
    ("num_of_threads", "1", "INFERENCE_NUM_THREADS", 1),
    ("num_streams", "2", "NUM_STREAMS", 2),
])
def test_options_become_device_properties(key: str, value: str, prop: str, expected: Any,
                                          core: aioinfer.Core) -> None:
    sess = session(small("mlp"), core, device_type="NUMPY", **{key: value})
    assert sess.compiled_model.get_property(prop) == expected


def test_model_priority_reaches_auto(core: aioinfer.Core) -> None:
    sess = session(small("mlp"), core, device_type="AUTO:NUMPY,TEMPLATE", model_priority="HIGH")
    assert str(sess._built.config["MODEL_PRIORITY"]) == "HIGH"


def test_model_priority_warns_where_no_device_has_it(core: aioinfer.Core) -> None:
    with pytest.warns(RuntimeWarning, match="MODEL_PRIORITY is not a property of device NUMPY"):
        session(small("mlp"), core, device_type="NUMPY", model_priority="LOW")


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("precision", "INT8", "FP32, FP16, ACCURACY"),
    ("num_of_threads", "0", "positive integer"),
    ("num_of_threads", "four", "positive integer"),
    ("num_streams", "-1", "positive integer"),
    ("enable_qdq_optimizer", "yes", "True or False"),
    ("disable_dynamic_shapes", "2", "True or False"),
    ("model_priority", "URGENT", "LOW, MEDIUM, HIGH, DEFAULT"),
    ("reshape_input", "data[1,3,x]", "lo..hi"),
    ("reshape_input", "data[1,5..2]", "lo..hi"),
    ("reshape_input", "data", "name"),
    ("layout", "data[NCCW]", "each letter once"),
    ("layout", "data[N1]", "one letter per dimension"),
    ("context", "zz", "hexadecimal"),
    ("load_config", "/no/such/file.json", "JSON file"),
    ("load_config", "{not json", "JSON"),
    ("device_id", "1", "retired"),
])
def test_bad_values_name_option_and_allowed(key: str, value: str, allowed: str,
                                            core: aioinfer.Core) -> None:
    with pytest.raises(errors.InvalidPropertyValueError, match=allowed) as info:
        session(small("mlp"), core, **{key: value})
    assert info.value.key == key and key in str(info.value)


def test_unknown_option_and_non_string_value(core: aioinfer.Core) -> None:
    with pytest.raises(errors.UnknownPropertyError, match="'fast'.*device_type"):
        session(small("mlp"), core, fast="1")
    with pytest.raises(errors.InvalidPropertyValueError, match="string"):
        ort.InferenceSession(small("mlp").SerializeToString(), providers=[OV],
                             provider_options=[{"num_streams": 2}], core=core)


def test_load_config(tmp_path: pathlib.Path, core: aioinfer.Core) -> None:
    config = {"NUMPY": {"PERFORMANCE_HINT": "THROUGHPUT", "NO_SUCH_KEY": "1",
                        "FULL_DEVICE_NAME": "x"}}
    path = tmp_path / "ov.json"
    path.write_text(json.dumps(config))
    with pytest.warns(RuntimeWarning) as caught:
        sess = session(small("mlp"), core, device_type="NUMPY", load_config=str(path))
    messages = " | ".join(str(w.message) for w in caught)
    assert "no property 'NO_SUCH_KEY'; ignored" in messages
    assert "FULL_DEVICE_NAME is read-only; skipped" in messages
    assert str(sess.compiled_model.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"
    bad = json.dumps({"NUMPY": {"NUM_STREAMS": "many"}})
    with pytest.raises(errors.InvalidPropertyValueError, match="NUM_STREAMS"):
        session(small("mlp"), core, device_type="NUMPY", load_config=bad)
    # entries for a HETERO target reach that device
    per = json.dumps({"TEMPLATE": {"PERF_COUNT": "YES"}})
    sess = session(small("mlp"), core, device_type="HETERO:TEMPLATE,NUMPY", load_config=per)
    assert sess._built.config["DEVICE_PROPERTIES"] == {"TEMPLATE": {"PERF_COUNT": "YES"}}


def _qdq_add_model() -> onnx.ModelProto:
    """x -> Q/DQ -> Add(bias) -> Q/DQ -> MatMul(W): the first pair feeds a plain Add."""
    rng = np.random.default_rng(0)
    scale, zero = numpy_helper.from_array(np.float32(0.05), "s"), numpy_helper.from_array(
        np.uint8(128), "z")
    w = numpy_helper.from_array(rng.standard_normal((8, 4)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "bias")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q1"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq1"),
             helper.make_node("Add", ["xd", "bias"], ["a"], name="add"),
             helper.make_node("QuantizeLinear", ["a", "s", "z"], ["aq"], name="q2"),
             helper.make_node("DequantizeLinear", ["aq", "s", "z"], ["ad"], name="dq2"),
             helper.make_node("MatMul", ["ad", "W"], ["y"], name="mm")]
    graph = helper.make_graph(nodes, "qdq_add",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
                              initializer=[scale, zero, w, bias])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_enable_qdq_optimizer_keeps_pairs_only_before_quantized_ops(core: aioinfer.Core) -> None:
    proto = _qdq_add_model()
    stripped = onnx.ModelProto()
    stripped.CopyFrom(proto)
    assert strip_qdq(stripped) == 2
    assert [n.name for n in stripped.graph.node] == ["add", "q2", "dq2", "mm"]
    x = np.random.default_rng(1).uniform(-3, 3, (2, 8)).astype(np.float32)
    sess = session(proto, core, device_type="NUMPY", enable_qdq_optimizer="True")
    assert [n.op_type for n in sess.compiled_model.model.proto.graph.node].count(
        "QuantizeLinear") == 1
    np.testing.assert_allclose(sess.run(None, {"x": x})[0],
                               oracle(stripped, {"x": x})[0], rtol=1e-5, atol=1e-5)
    # the cnn-qdq model has pairs only before Conv/Gemm: nothing to strip
    cnn = small("cnn-qdq")
    assert strip_qdq(cnn) == 0


def test_reshape_input_bounds_enforced_at_run_time(core: aioinfer.Core) -> None:
    proto = small("cnn")  # input [N,3,32,32]
    sess = session(proto, core, device_type="NUMPY", reshape_input="input[1..3,3,32,32]")
    assert sess.get_inputs()[0].shape[1:] == [3, 32, 32]
    x = feeds_for(proto, batch=3)["input"]
    np.testing.assert_allclose(sess.run(None, {"input": x})[0], oracle(proto, {"input": x})[0],
                               rtol=1e-4, atol=1e-6)
    big = np.concatenate([x, x[:1]])
    with pytest.raises(errors.InputShapeError, match="size 4 on axis 0 is outside the "
                       "reshape_input bound 1..3") as info:
        sess.run(None, {"input": big})
    assert info.value.input_name == "input"
    with pytest.raises(errors.InvalidPropertyValueError, match="not a model input"):
        session(proto, core, reshape_input="image[1,3,32,32]")
    with pytest.raises(errors.InvalidPropertyValueError, match="rank 4"):
        session(proto, core, reshape_input="input[1,3]")
    with pytest.raises(errors.InvalidPropertyValueError, match="excludes"):
        session(proto, core, reshape_input="input[1,3,40..50,32]")


def test_static_reshape_makes_the_input_static(core: aioinfer.Core) -> None:
    sess = session(small("cnn"), core, device_type="NUMPY", reshape_input="input[2,3,32,32]")
    assert sess.get_inputs()[0].shape == [2, 3, 32, 32]


def test_layout(core: aioinfer.Core) -> None:
    sess = session(small("cnn"), core, layout="input[NCHW],probabilities[NC]")
    assert sess._built.shapes.layout_of("input") == "NCHW"
    with pytest.raises(errors.InvalidPropertyValueError, match="rank 4"):
        session(small("cnn"), core, layout="input[NC]")
    with pytest.raises(errors.InvalidPropertyValueError, match="not a model input or output"):
        session(small("cnn"), core, layout="data[NCHW]")


def test_disable_dynamic_shapes_compiles_per_shape(core: aioinfer.Core) -> None:
    proto = small("cnn")
    sess = session(proto, core, device_type="NUMPY", disable_dynamic_shapes="True")
    for batch in (1, 2, 1):
        x = feeds_for(proto, batch=batch)["input"][:batch]
        np.testing.assert_allclose(sess.run(None, {"input": x})[0],
                                   oracle(proto, {"input": x})[0], rtol=1e-4, atol=1e-6)
    assert sess.static_models() == 2


def test_context_handle_is_refused_by_host_devices(core: aioinfer.Core) -> None:
    # a host device's context takes no handle: the OpenCL-style handle is refused by name
    with pytest.raises(errors.UnknownPropertyError, match="CONTEXT"):
        session(small("mlp"), core, device_type="NUMPY", context="0x123456ff")
    with pytest.raises(errors.UnknownPropertyError, match="TEMPLATE.*CONTEXT"):
        session(small("mlp"), core, device_type="TEMPLATE", context="0x1")


def test_cpu_fallback_when_the_device_cannot_run_every_node(core: aioinfer.Core) -> None:
    proto = small("mlp")
    sess = session(proto, core, device_type="NUMPY")
    assert sess.device == "NUMPY"  # runs whole: no HETERO
    assert sess.get_providers() == [OV, "CPUExecutionProvider"]
