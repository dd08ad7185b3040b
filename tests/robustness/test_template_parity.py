"""TEMPLATE (the reference plugin) runs every model NUMPY runs, with the same results.

Regressions: a torch-exported BERT failed on TEMPLATE in GatherElements ("cannot reshape array
of size 1 into shape (1,128)": onnx.reference's np.choose path takes at most 64 choices), and
QDQ models of opset < 19 did not compile (onnx.reference has DequantizeLinear from 19 only).
onnxruntime is the oracle for the single-op cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import aioinfer
from aioinfer import models
from aioinfer.errors import InferenceError

CORE = aioinfer.Core()

SMALL: dict[str, dict[str, Any]] = {
    "cnn": {"image_size": 32}, "mlp": {"batch": 2, "sizes": (16, 32, 8)},
    "bert": {"hidden": 32, "layers": 1, "seq": 16}, "gpt2": {"hidden": 32, "layers": 1, "seq": 16},
    "mobilenet_v2": {"image_size": 32},
    "vit": {"image_size": 32, "patch": 8, "hidden": 48, "layers": 1},
    "cnn-qdq": {"image_size": 32}, "bert-qdq": {"hidden": 32, "layers": 1, "seq": 16},
}


def test_every_builtin_model_has_a_case() -> None:
    assert set(SMALL) == set(models.MODELS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_template_runs_each_builtin_model_like_numpy(name: str) -> None:
    proto = models.get(name, **SMALL[name])
    feed = models.example_inputs(proto)
    got = {d: CORE.compile_model(proto, d).create_infer_request().infer(feed).to_list()
           for d in ("NUMPY", "TEMPLATE")}
    for a, b in zip(got["NUMPY"], got["TEMPLATE"], strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _gather_elements(data: np.ndarray, indices_shape: tuple[int, ...], axis: int,
                     opset: int = 13) -> Any:
    graph = helper.make_graph(
        [helper.make_node("GatherElements", ["data", "indices"], ["y"], axis=axis,
                          name="gather")], "ge",
        [helper.make_tensor_value_info("indices", TensorProto.INT64, list(indices_shape))],
        [helper.make_tensor_value_info("y", helper.np_dtype_to_tensor_dtype(data.dtype),
                                       list(indices_shape))],
        [numpy_helper.from_array(data, "data")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


CASES = [  # data shape, indices shape, axis: torch BERT's first, then more than 64 choices
    ((1, 512), (1, 128), 1),
    ((1, 512), (1, 512), -1),
    ((2, 70, 3), (2, 5, 3), 1),
    ((3, 70, 4), (2, 9, 2), 1),  # indices smaller than data outside the axis
    ((100, 3), (250, 3), 0),
    ((4, 5), (4, 5), 0),
]


@pytest.mark.parametrize(("data_shape", "index_shape", "axis"), CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_gather_elements_matches_onnxruntime(data_shape: tuple[int, ...],
                                             index_shape: tuple[int, ...], axis: int,
                                             dtype: Any) -> None:
    rng = np.random.default_rng(0)
    data = (rng.standard_normal(data_shape) * 100).astype(dtype)
    n = data_shape[axis]
    indices = rng.integers(-n, n, index_shape).astype(np.int64)  # negative ones too
    model = _gather_elements(data, index_shape, axis)
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None,
                                                                        {"indices": indices})
    for device in ("TEMPLATE", "NUMPY"):
        got = CORE.compile_model(model, device).create_infer_request().infer(
            {"indices": indices})
        np.testing.assert_array_equal(got["y"], want[0])


@pytest.mark.parametrize("device", ["TEMPLATE", "NUMPY"])
def test_gather_elements_out_of_range_names_the_node(device: str) -> None:
    model = _gather_elements(np.zeros((1, 512), np.float32), (1, 128), 1)
    request = CORE.compile_model(model, device).create_infer_request()
    bad = np.zeros((1, 128), np.int64)
    bad[0, 7] = 512
    with pytest.raises(InferenceError) as info:
        request.infer({"indices": bad})
    assert info.value.node == "gather"
    assert request.infer({"indices": np.zeros((1, 128), np.int64)})["y"].shape == (1, 128)


@pytest.mark.parametrize("opset", [10, 13, 17, 19, 21])
def test_dequantize_linear_at_every_opset_matches_onnxruntime(opset: int) -> None:
    per_axis = opset >= 13
    scale = np.array([0.5, 0.25, 2.0], np.float32) if per_axis else np.array(0.5, np.float32)
    zero = np.array([3, 0, 250], np.uint8) if per_axis else np.array(3, np.uint8)
    attrs = {"axis": 1} if per_axis else {}
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], **attrs)], "dq",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])],
        [numpy_helper.from_array(scale, "s"), numpy_helper.from_array(zero, "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 21 else 10
    x = np.random.default_rng(1).integers(0, 256, (2, 3, 4)).astype(np.uint8)
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = CORE.compile_model(model, "TEMPLATE").create_infer_request().infer({"x": x})["y"]
    np.testing.assert_array_equal(got, want)
