"""The graph passes: each fires on the pattern it targets, and results do not change."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ._util import check, model, ops, plan

RNG = np.random.default_rng(0)


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def bn_params(c: int) -> dict[str, np.ndarray]:
    return {"s": rand(c) + 1.5, "bb": rand(c), "mean": rand(c), "var": np.abs(rand(c)) + 0.5}


def test_conv_bn_relu_residual_becomes_one_fused_conv() -> None:
    x = rand(1, 8, 10, 10)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "bb", "mean", "var"], ["n"]),
        helper.make_node("Add", ["n", "x"], ["r"]),
        helper.make_node("Relu", ["r"], ["y"]),
    ]
    m = model(nodes, {"x": x}, ["y"], {"w": rand(8, 8, 3, 3, scale=0.2), **bn_params(8)})
    p = check(m, {"x": x}, rtol=1e-4, atol=1e-4)
    assert ops(p) == ["FusedConv"]


def test_conv_bias_add_and_clip_fuse() -> None:
    x = rand(2, 3, 9, 9)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2]),
        helper.make_node("Add", ["c", "b"], ["cb"]),
        helper.make_node("Clip", ["cb", "lo", "hi"], ["y"]),
    ]
    inits = {"w": rand(4, 3, 3, 3), "b": rand(4, 1, 1), "lo": np.float32(-0.5),
             "hi": np.float32(0.5)}
    p = check(m := model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert ops(p) == ["FusedConv"], m


def test_bias_that_broadcasts_along_height_is_not_absorbed() -> None:
    x = rand(1, 2, 4, 4)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Add", ["c", "b"], ["y"])]
    p = check(model(nodes, {"x": x}, ["y"], {"w": rand(4, 2, 1, 1), "b": rand(4, 1)}), {"x": x})
    assert "Add" in ops(p)


def test_value_read_twice_stops_the_chain() -> None:
    x = rand(1, 2, 5, 5)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Relu", ["c"], ["y"]),
             helper.make_node("Sigmoid", ["c"], ["z"])]
    p = check(model(nodes, {"x": x}, ["y", "z"], {"w": rand(3, 2, 1, 1)}), {"x": x})
    assert ops(p) == ["FusedConv", "Relu", "Sigmoid"]


def test_graph_output_in_the_middle_of_a_chain_survives() -> None:
    x = rand(4, 6)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1),
             helper.make_node("Relu", ["g"], ["y"])]
    m = model(nodes, {"x": x}, ["g", "y"], {"w": rand(5, 6), "b": rand(5)})
    p = check(m, {"x": x})
    assert ops(p) == ["FusedGemm", "Relu"]


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_bn_fold(trans_b: int) -> None:
    x = rand(3, 6)
    w = rand(5, 6) if trans_b else rand(6, 5)
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=trans_b, alpha=0.5,
                              beta=2.0),
             helper.make_node("BatchNormalization", ["g", "s", "bb", "mean", "var"], ["y"])]
    p = check(model(nodes, {"x": x}, ["y"], {"w": w, "b": rand(5), **bn_params(5)}), {"x": x},
              rtol=1e-4, atol=1e-5)
    assert ops(p) == ["FusedGemm"]


def test_matmul_bias_gelu_chain_keeps_unfusable_tail() -> None:
    x = rand(2, 3, 8)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["b", "m"], ["a"]),
             helper.make_node("Tanh", ["a"], ["y"])]
    p = check(model(nodes, {"x": x}, ["y"], {"w": rand(8, 4), "b": rand(4)}), {"x": x})
    assert ops(p) == ["FusedMatMul", "Tanh"]


@pytest.mark.parametrize("residual_shape", [(2, 3, 4), (3, 4)])
def test_matmul_bias_residual_relu_becomes_one_fused_matmul(residual_shape) -> None:
    # a transformer's projection + residual; a residual that broadcasts is added too
    x, r = rand(2, 3, 8), rand(*residual_shape)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Add", ["r", "a"], ["s"]),
             helper.make_node("Relu", ["s"], ["y"])]
    m = model(nodes, {"x": x, "r": r}, ["y"], {"w": rand(8, 4), "b": rand(4)})
    p = check(m, {"x": x, "r": r})
    assert ops(p) == ["FusedMatMul"]


def test_identity_dropout_and_double_transpose_disappear() -> None:
    x = rand(2, 3, 4)
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        helper.make_node("Dropout", ["i"], ["d"]),
        helper.make_node("Transpose", ["d"], ["t1"], perm=[2, 0, 1]),
        helper.make_node("Transpose", ["t1"], ["t2"], perm=[1, 2, 0]),
        helper.make_node("Sigmoid", ["t2"], ["y"]),
    ]
    p = check(model(nodes, {"x": x}, ["y"]), {"x": x})
    assert ops(p) == ["Sigmoid"]


def test_transposes_compose_into_one() -> None:
    x = rand(2, 3, 4)
    nodes = [helper.make_node("Transpose", ["x"], ["t1"], perm=[1, 0, 2]),
             helper.make_node("Transpose", ["t1"], ["y"], perm=[2, 0, 1])]
    p = check(model(nodes, {"x": x}, ["y"]), {"x": x})
    assert ops(p) == ["Transpose"]


def test_dropout_mask_output_keeps_the_node() -> None:
    x = rand(3, 3)
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"]),
             helper.make_node("Relu", ["d"], ["y"])]
    p = check(model(nodes, {"x": x}, ["y", "mask"]), {"x": x})
    assert "Dropout" in ops(p)


def test_dropout_with_an_unread_mask_output_disappears() -> None:
    x = rand(3, 3)
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], ratio=0.5),
             helper.make_node("Relu", ["d"], ["y"])]
    p = check(model(nodes, {"x": x}, ["y"], opset=9), {"x": x})
    assert ops(p) == ["Relu"]


def test_constant_of_shape_weights_fold_then_fuse() -> None:
    x = rand(1, 2, 6, 6)
    nodes = [
        helper.make_node("ConstantOfShape", ["wshape"], ["w"],
                         value=helper.make_tensor("v", 1, [1], [0.25])),
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    m = model(nodes, {"x": x}, ["y"], {"wshape": np.array([3, 2, 3, 3], dtype=np.int64)})
    p = check(m, {"x": x})
    assert ops(p) == ["FusedConv"]
    assert all(v.shape != (3,) or v.dtype != np.int64 for v in p.constants.values())


def test_winograd_on_a_large_static_3x3_conv() -> None:
    x = rand(1, 64, 14, 14)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    m = model(nodes, {"x": x}, ["y"], {"w": rand(64, 64, 3, 3, scale=0.05), "b": rand(64)})
    p = check(m, {"x": x}, rtol=1e-4, atol=1e-4)
    assert ops(p) == ["WinogradConv"]


@pytest.mark.parametrize("pads", [[0, 0, 0, 0], [1, 0, 2, 1]])
def test_winograd_kernel_odd_sizes_and_asymmetric_pads(pads: list[int]) -> None:
    from aioinfer.plugins.numpy.kernels.conv import conv_nd
    from aioinfer.plugins.numpy.kernels.winograd import winograd_conv
    from aioinfer.plugins.numpy.passes.winograd import winograd_weights

    x, w, b = rand(2, 5, 9, 7), rand(6, 5, 3, 3), rand(6)
    want = conv_nd(x, w, b, "NOTSET", None, 1, pads, None)
    got = winograd_conv(x, winograd_weights(w), b, pads=pads)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_passes_leave_the_model_untouched() -> None:
    x = rand(1, 2, 4, 4)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("BatchNormalization", ["c", "s", "bb", "mean", "var"], ["y"])]
    m = model(nodes, {"x": x}, ["y"], {"w": rand(2, 2, 1, 1), **bn_params(2)})
    before = m.SerializeToString()
    plan(m)
    assert m.SerializeToString() == before


@pytest.mark.parametrize("power", [2.0, 3.0, 2.5])
def test_pow_by_small_constant_becomes_multiplies(power: float) -> None:
    x = rand(3, 5)
    nodes = [helper.make_node("Pow", ["x", "p"], ["y"])]
    p = check(model(nodes, {"x": x}, ["y"], {"p": np.array(power, dtype=np.float32)}),
              {"x": np.abs(x)}, rtol=1e-5)
    assert ("Pow" in ops(p)) == (power == 2.5)


def test_shape_chains_fold_through_reshapes_when_inputs_are_static() -> None:
    # x -> Reshape(x, Shape(x)[0], -1) -> Shape -> Reshape back: two rounds of inference.
    x = rand(2, 3, 4)
    i64 = np.int64
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "zero1"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"]),
        helper.make_node("Shape", ["flat"], ["s2"]),
        helper.make_node("Reshape", ["flat", "s2"], ["same"]),
        helper.make_node("Relu", ["same"], ["y"]),
    ]
    inits = {"zero": np.array(0, dtype=i64), "zero1": np.array([0], dtype=i64),
             "minus1": np.array([-1], dtype=i64)}
    p = check(model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert "Shape" not in ops(p)


def test_bn_scale_shift_relu_chain_becomes_one_channel_affine() -> None:
    x = rand(1, 4, 5, 5)
    nodes = [helper.make_node("Concat", ["x", "x"], ["cat"], axis=1),
             helper.make_node("BatchNormalization", ["cat", "s", "bb", "mean", "var"], ["bn"]),
             helper.make_node("Mul", ["bn", "m"], ["scaled"]),
             helper.make_node("Add", ["scaled", "a"], ["shifted"]),
             helper.make_node("Sub", ["shifted", "k"], ["moved"]),
             helper.make_node("Relu", ["moved"], ["y"])]
    inits = {**bn_params(8), "m": rand(8, 1, 1), "a": rand(1, 8, 1, 1),
             "k": np.array(0.25, dtype=np.float32)}
    p = check(model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert ops(p) == ["Concat", "ChannelAffine"]


def test_affine_that_would_broadcast_the_input_is_left_alone() -> None:
    x = rand(1, 1, 3, 3)
    nodes = [helper.make_node("Mul", ["x", "m"], ["a"]),
             helper.make_node("Add", ["a", "c"], ["y"])]
    p = check(model(nodes, {"x": x}, ["y"], {"m": rand(1, 4, 1, 1), "c": rand(4, 1, 1)}),
              {"x": x})
    assert ops(p) == ["Mul", "Add"]


def test_affine_after_a_conv_folds_into_its_weights() -> None:
    x = rand(1, 3, 6, 6)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c", "m"], ["scaled"]),
             helper.make_node("Add", ["scaled", "a"], ["shifted"]),
             helper.make_node("Relu", ["shifted"], ["y"])]
    inits = {"w": rand(5, 3, 3, 3), "m": rand(5, 1, 1), "a": rand(5, 1, 1)}
    p = check(model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert ops(p) == ["FusedConv"]


@pytest.mark.parametrize("fill_first", [True, False])
def test_where_with_a_scalar_constant_becomes_masked_fill(fill_first: bool) -> None:
    x = rand(2, 3, 4, 5)
    mask = RNG.random((1, 1, 4, 1)) > 0.5
    ins = ["m", "c", "x"] if fill_first else ["m", "x", "c"]
    nodes = [helper.make_node("Where", ins, ["y"])]
    inits = {"c": np.array(np.finfo(np.float32).min, dtype=np.float32)}
    p = check(model(nodes, {"x": x, "m": mask}, ["y"], inits), {"x": x, "m": mask})
    assert ops(p) == ["MaskedFill"]


def test_masked_fill_broadcasts_x_to_the_mask() -> None:
    x = rand(1, 5)
    mask = RNG.random((3, 5)) > 0.5
    nodes = [helper.make_node("Where", ["m", "c", "x"], ["y"])]
    p = check(model(nodes, {"x": x, "m": mask}, ["y"], {"c": np.array(0.0, dtype=np.float32)}),
              {"x": x, "m": mask})
    assert ops(p) == ["MaskedFill"]
