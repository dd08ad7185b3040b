"""PrePostProcessor: steps built into the graph, checked against the same steps in NumPy."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import aioinfer
from aioinfer import models
from aioinfer.errors import PreprocessError
from aioinfer.preprocess import ColorFormat, PrePostProcessor, ResizeAlgorithm

from .numpy_steps import by_hand

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
SCALE = np.array([58.395, 57.12, 57.375], np.float32)


def _ppp(model: aioinfer.Model) -> aioinfer.Model:
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type("u8").set_layout("NHWC") \
        .set_color_format(ColorFormat.BGR).set_spatial_dynamic_shape()
    ppp.input().preprocess().convert_element_type(np.float32) \
        .convert_color(ColorFormat.RGB).resize(ResizeAlgorithm.LINEAR).mean(MEAN).scale(SCALE)
    ppp.input().model().set_layout("NCHW")
    return ppp.build()


@pytest.fixture(scope="module")
def plain() -> aioinfer.Model:
    return aioinfer.Core().read_model(models.cnn(image_size=32, num_classes=10))


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE"])
def test_frames_of_other_sizes_match_numpy_steps(plain: aioinfer.Model, device: str) -> None:
    core = aioinfer.Core()
    built = _ppp(plain)
    port = built.input()
    assert port.element_type == np.uint8 and port.shape == (1, None, None, 3)
    with_ppp = core.compile_model(built, device)
    without = core.compile_model(plain, device)
    rng = np.random.default_rng(0)
    for size in [(45, 61), (32, 32), (20, 77)]:
        frame = rng.integers(0, 256, (1, *size, 3), dtype=np.uint8)
        expected = without({"input": by_hand(frame, 32, 32, MEAN, SCALE)})["probabilities"]
        got = with_ppp({"input": frame})["probabilities"]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_steps_are_onnx_nodes_before_the_model(plain: aioinfer.Model) -> None:
    built = _ppp(plain)
    ops = [n.op_type for n in built.proto.graph.node]
    first_model_node = ops.index("Conv")
    assert set(ops[:first_model_node]) >= {"Cast", "Transpose", "Resize", "Slice", "Sub", "Div"}
    assert "Conv" not in ops[:first_model_node]
    assert plain.input().element_type == np.float32  # the model given is not changed


def _identity(shape: list[int], dtype: int = TensorProto.FLOAT) -> aioinfer.Model:
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                              [helper.make_tensor_value_info("x", dtype, shape)],
                              [helper.make_tensor_value_info("y", dtype, shape)])
    return aioinfer.Core().read_model(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_crop_reverse_and_static_spatial_shape() -> None:
    ppp = PrePostProcessor(_identity([1, 3, 4, 4]))
    ppp.input().tensor().set_layout("NCHW").set_spatial_static_shape(6, 6)
    ppp.input().preprocess().crop([0, 0, 1, 1], [1, 3, 5, 5]).reverse_channels()
    built = ppp.build()
    assert built.input().shape == (1, 3, 6, 6)
    x = np.arange(108, dtype=np.float32).reshape(1, 3, 6, 6)
    out = aioinfer.Core().compile_model(built, "NUMPY")({"x": x})["y"]
    np.testing.assert_array_equal(out, x[:, ::-1, 1:5, 1:5])


@pytest.mark.parametrize("algorithm", [ResizeAlgorithm.NEAREST, ResizeAlgorithm.CUBIC])
def test_other_resize_algorithms_agree_across_devices(algorithm: ResizeAlgorithm) -> None:
    ppp = PrePostProcessor(_identity([1, 8, 8, 3]))
    ppp.input().tensor().set_layout("NHWC").set_spatial_dynamic_shape()
    ppp.input().preprocess().resize(algorithm)
    built = ppp.build()
    x = np.random.default_rng(2).standard_normal((1, 13, 5, 3)).astype(np.float32)
    core = aioinfer.Core()
    a = core.compile_model(built, "NUMPY")({"x": x})["y"]
    b = core.compile_model(built, "TEMPLATE")({"x": x})["y"]
    assert a.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    if algorithm is ResizeAlgorithm.NEAREST:
        rows, cols = (np.arange(8) * 13) // 8, (np.arange(8) * 5) // 8
        np.testing.assert_array_equal(a, x[:, rows][:, :, cols])


def test_postprocess_layout_and_type() -> None:
    ppp = PrePostProcessor(_identity([1, 3, 2, 2]))
    ppp.output().model().set_layout("NCHW")
    ppp.output().tensor().set_layout("NHWC").set_element_type("f16")
    built = ppp.build()
    assert built.output().element_type == np.float16 and built.output().shape == (1, 2, 2, 3)
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)
    out = aioinfer.Core().compile_model(built, "NUMPY")({"x": x})["y"]
    np.testing.assert_array_equal(out, x.transpose(0, 2, 3, 1).astype(np.float16))


def test_bgrx_drops_the_fourth_channel() -> None:
    ppp = PrePostProcessor(_identity([1, 2, 2, 3]))
    ppp.input().tensor().set_layout("NHWC").set_color_format(ColorFormat.BGRX)
    ppp.input().preprocess().convert_color(ColorFormat.RGB)
    built = ppp.build()
    assert built.input().shape == (1, 2, 2, 4)
    x = np.arange(16, dtype=np.float32).reshape(1, 2, 2, 4)
    out = aioinfer.Core().compile_model(built, "NUMPY")({"x": x})["y"]
    np.testing.assert_array_equal(out, x[..., 2::-1])


def test_mistakes_are_typed_errors() -> None:
    model = _identity([1, 3, 4, 4])
    ppp = PrePostProcessor(model)
    ppp.input().preprocess().mean([1.0, 2.0, 3.0])
    with pytest.raises(PreprocessError, match="'C' axis"):
        ppp.build()
    ppp = PrePostProcessor(_identity([1, 3, 4, 4], TensorProto.UINT8))
    ppp.input().tensor().set_layout("NCHW")
    ppp.input().preprocess().scale(2.0)
    with pytest.raises(PreprocessError, match="floating-point"):
        ppp.build()
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_layout("NCHW")
    ppp.input().preprocess().convert_color(ColorFormat.RGB)
    with pytest.raises(PreprocessError, match="color format"):
        ppp.build()
    with pytest.raises(PreprocessError, match="layout"):
        PrePostProcessor(model).input().tensor().set_layout("NCHH")
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_layout("NHWC").set_color_format(ColorFormat.NV12_SINGLE_PLANE)
    ppp.input().preprocess().convert_color(ColorFormat.RGB)
    with pytest.raises(PreprocessError, match="NV12"):
        ppp.build()


def test_no_steps_leave_the_graph_alone() -> None:
    model = _identity([1, 3, 4, 4])
    built = PrePostProcessor(model).build()
    assert [n.op_type for n in built.proto.graph.node] == ["Identity"]
    assert isinstance(built.proto, onnx.ModelProto)
