"""NUMPY dense-network kernels against onnxruntime, for configurations the node cases miss.

Convolution fast paths (1x1 strided, flat-run stride-1, depthwise, grouped, 1-D/3-D), pooling
corner cases (ceil_mode with padding, Indices with padding and storage_order), the opset < 13
softmax coercion, normalization side outputs and the quantized products.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ._ort import make_model, run_ort, run_ours

pytestmark = pytest.mark.usefixtures("tier")  # NumPy's kernels and the compiled tier

RNG = np.random.default_rng(0)


def rand(*shape: int, dtype=np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def check(op: str, inputs: dict[str, np.ndarray], n_out: int = 1, opset: int = 21,
          rtol: float = 1e-4, atol: float = 1e-5, **attrs) -> list:
    """One-node model: our outputs must match onnxruntime's in dtype, shape and value."""
    outs = [f"y{k}" for k in range(n_out)]
    model = make_model([helper.make_node(op, list(inputs), outs, **attrs)], inputs, outs, opset)
    ours, theirs = run_ours(model, inputs), run_ort(model, inputs)
    for a, b in zip(ours, theirs, strict=True):
        a = np.asarray(a)
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    return ours


CONV_CASES = {
    "1x1_strided": ((2, 8, 9, 9), (6, 8, 1, 1), dict(strides=[2, 2])),
    "1x1_padded": ((1, 4, 5, 5), (3, 4, 1, 1), dict(pads=[1, 0, 0, 1])),
    "3x3_same_lower": ((2, 5, 7, 6), (4, 5, 3, 3), dict(auto_pad="SAME_LOWER")),
    "3x3_same_upper_strided": ((1, 3, 8, 7), (4, 3, 3, 3), dict(auto_pad="SAME_UPPER",
                                                                strides=[2, 2])),
    "dilated": ((1, 4, 10, 10), (5, 4, 3, 2), dict(dilations=[2, 3], pads=[2, 1, 2, 1])),
    "grouped": ((2, 6, 7, 7), (9, 2, 3, 3), dict(group=3, pads=[1, 1, 1, 1])),
    "grouped_strided": ((1, 8, 9, 9), (4, 4, 3, 3), dict(group=2, strides=[2, 1])),
    "depthwise": ((2, 6, 8, 8), (6, 1, 3, 3), dict(group=6, pads=[1, 1, 1, 1])),
    "depthwise_multiplier": ((1, 4, 6, 6), (8, 1, 3, 3), dict(group=4, pads=[0, 1, 2, 1])),
    "depthwise_strided": ((1, 6, 9, 9), (6, 1, 3, 3), dict(group=6, strides=[2, 2],
                                                           pads=[1, 1, 1, 1])),
    "conv1d": ((2, 3, 11), (4, 3, 3), dict(pads=[2, 1], dilations=[2])),
    "conv3d": ((1, 2, 5, 6, 4), (3, 2, 3, 2, 2), dict(pads=[1, 0, 1, 1, 1, 0])),
    "conv3d_strided": ((1, 2, 7, 6, 5), (3, 2, 3, 3, 3), dict(strides=[2, 1, 2])),
}


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv(case: str, bias: bool) -> None:
    xs, ws, attrs = CONV_CASES[case]
    inputs = {"x": rand(*xs), "w": rand(*ws)}
    if bias:
        inputs["b"] = rand(ws[0])
    check("Conv", inputs, **attrs)


@pytest.mark.parametrize("attrs", [
    dict(strides=[2, 2], output_padding=[1, 0]),
    dict(group=2, strides=[1, 2], pads=[1, 0, 0, 1]),
    dict(dilations=[2, 1], auto_pad="SAME_UPPER", strides=[2, 2]),
    dict(output_shape=[8, 6], strides=[2, 2]),
])
def test_conv_transpose(attrs: dict) -> None:
    group = attrs.get("group", 1)
    inputs = {"x": rand(2, 4, 4, 3), "w": rand(4, 3, 3, 2), "b": rand(3 * group)}
    check("ConvTranspose", inputs, **attrs)


@pytest.mark.parametrize("attrs", [
    dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
    dict(kernel_shape=[2, 3], strides=[2, 2], ceil_mode=1),
    dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[1, 2, 1, 2]),
    dict(kernel_shape=[3, 2], auto_pad="SAME_LOWER", strides=[2, 1]),
])
@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_2d(op: str, attrs: dict) -> None:
    if op == "AveragePool":
        for include in (0, 1):
            check(op, {"x": rand(2, 3, 9, 8)}, count_include_pad=include, **attrs)
    else:
        check(op, {"x": rand(2, 3, 9, 8)}, **attrs)


@pytest.mark.parametrize("storage_order", [0, 1])
def test_maxpool_indices(storage_order: int) -> None:
    x = rand(2, 3, 7, 6)
    check("MaxPool", {"x": x}, n_out=2, kernel_shape=[3, 2], strides=[2, 2],
          pads=[1, 0, 1, 1], storage_order=storage_order)


def test_pool_1d_3d_and_int() -> None:
    check("MaxPool", {"x": rand(2, 3, 10)}, kernel_shape=[3], strides=[2], ceil_mode=1)
    check("AveragePool", {"x": rand(1, 2, 5, 6, 4)}, kernel_shape=[2, 3, 2], pads=[1] * 6)
    x = RNG.integers(0, 255, (1, 2, 6, 6)).astype(np.uint8)
    check("MaxPool", {"x": x}, kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])


def test_lp_pool_and_globals() -> None:
    x = rand(2, 3, 7, 5)
    check("LpPool", {"x": x}, kernel_shape=[3, 2], p=3, pads=[1, 0, 1, 1], strides=[2, 1])
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        check(op, {"x": x})
    check("GlobalLpPool", {"x": x}, p=3)


def test_maxunpool_roundtrip() -> None:
    x = rand(1, 2, 6, 6)
    model = make_model([
        helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("MaxUnpool", ["p", "i"], ["y"], kernel_shape=[2, 2], strides=[2, 2]),
    ], {"x": x}, ["y"])
    np.testing.assert_array_equal(run_ours(model, {"x": x})[0], run_ort(model, {"x": x})[0])


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_axis_semantics(op: str, opset: int) -> None:
    x = rand(2, 3, 4, 5)
    check(op, {"x": x}, opset=opset, axis=1)
    check(op, {"x": x}, opset=opset)


def test_normalizations() -> None:
    x = rand(2, 6, 5, 4)
    c = {"s": rand(6), "b": rand(6)}
    check("LayerNormalization", {"x": x, "s": rand(5, 4), "b": rand(5, 4)}, n_out=3,
          axis=2, opset=17)
    check("GroupNormalization", {"x": x, **c}, num_groups=3, epsilon=1e-3)
    check("InstanceNormalization", {"x": x, **c})
    check("LRN", {"x": x}, size=5, alpha=1e-2, beta=0.6, bias=2.0)
    check("MeanVarianceNormalization", {"x": x}, axes=[1, 2])
    check("LpNormalization", {"x": x}, axis=1, p=1)
    stats = {"m": rand(6), "v": np.abs(rand(6)) + 0.5}
    check("BatchNormalization", {"x": x, **c, **stats}, epsilon=1e-3)
    check("BatchNormalization", {"x": x, **c, **stats}, n_out=3, training_mode=1,
          momentum=0.8)


def test_gemm_and_matmul() -> None:
    a, b = rand(5, 4), rand(3, 5)
    check("Gemm", {"a": a, "b": b, "c": rand(1)}, transA=1, transB=1, alpha=0.5, beta=2.0)
    check("Gemm", {"a": a.T.copy(), "b": b.T.copy()}, opset=13)
    check("MatMul", {"a": rand(2, 1, 3, 4), "b": rand(5, 4, 2)})


def test_quantized_products() -> None:
    a = RNG.integers(0, 255, (4, 6)).astype(np.uint8)
    b = RNG.integers(-128, 127, (6, 3)).astype(np.int8)
    azp, bzp = np.array(3, np.uint8), np.array([1, -2, 0], np.int8)
    # Exact integer arithmetic, not onnxruntime: on AVX2 without VNNI its u8 x s8 kernel
    # (vpmaddubsw) saturates pairwise sums to int16 (seen: 2 of these 12 values wrong).
    inputs = {"a": a, "b": b, "azp": azp, "bzp": bzp}
    model = make_model([helper.make_node("MatMulInteger", list(inputs), ["y"])], inputs, ["y"],
                       21)
    [got] = run_ours(model, inputs)
    exact = (a.astype(np.int64) - 3) @ (b.astype(np.int64) - bzp.astype(np.int64))
    assert np.asarray(got).dtype == np.int32
    np.testing.assert_array_equal(got, exact)
    q = {"a": a, "as": np.array(0.05, np.float32), "azp": azp,
         "b": RNG.integers(0, 255, (6, 3)).astype(np.uint8),
         "bs": np.array([0.02, 0.03, 0.01], np.float32), "bzp": np.array([4, 9, 0], np.uint8),
         "ys": np.array(0.4, np.float32), "yzp": np.array(7, np.uint8)}
    check("QLinearMatMul", q, atol=1)  # onnxruntime may round a tie the other way
    x = RNG.integers(0, 255, (1, 3, 6, 6)).astype(np.uint8)
    w = RNG.integers(0, 255, (4, 3, 3, 3)).astype(np.uint8)
    check("ConvInteger", {"x": x, "w": w, "xzp": np.array(10, np.uint8)}, pads=[1, 1, 1, 1])


def test_dropout_training_is_seeded_and_scaled() -> None:
    x = np.ones((50, 40), np.float32)
    inputs = {"x": x, "r": np.array(0.25, np.float32), "t": np.array(True)}
    model = make_model([helper.make_node("Dropout", list(inputs), ["y", "m"], seed=3)],
                       inputs, ["y", "m"])
    y, mask = run_ours(model, inputs)
    assert mask.dtype == bool and 0.6 < mask.mean() < 0.9
    np.testing.assert_allclose(y, mask / np.float32(0.75))
    again = run_ours(model, inputs)
    np.testing.assert_array_equal(again[1], mask)
    inputs["t"] = np.array(False)
    y, mask = run_ours(model, inputs)
    assert y is x and mask.all()


def test_deform_conv_matches_reference_with_groups_and_strides() -> None:
    from onnx.reference import ReferenceEvaluator

    x, w = rand(1, 4, 6, 5), rand(6, 2, 3, 2)
    offset = rand(1, 2 * 3 * 2 * 2, 3, 3) * 0.7
    inputs = {"x": x, "w": w, "o": offset, "b": rand(6), "m": rand(1, 2 * 3 * 2, 3, 3)}
    attrs = dict(group=2, offset_group=2, strides=[2, 1], pads=[1, 0, 1, 0], dilations=[1, 2])
    model = make_model([helper.make_node("DeformConv", list(inputs), ["y"], **attrs)],
                       inputs, ["y"], opset=22)
    expected = ReferenceEvaluator(model).run(None, inputs)[0]
    np.testing.assert_allclose(run_ours(model, inputs)[0], expected, rtol=1e-4, atol=1e-5)


def test_narrow_floats_keep_dtype_and_accumulate_in_float32() -> None:
    import ml_dtypes

    x, w = rand(1, 8, 6, 6), rand(4, 8, 3, 3)
    inputs = {"x": x.astype(np.float16), "w": w.astype(np.float16)}
    check("Conv", inputs, rtol=2e-3, atol=2e-3, pads=[1, 1, 1, 1])
    a, b = rand(3, 16).astype(ml_dtypes.bfloat16), rand(16, 5).astype(ml_dtypes.bfloat16)
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"])], {"a": a, "b": b}, ["y"])
    y = run_ours(model, {"a": a, "b": b})[0]
    assert y.dtype == ml_dtypes.bfloat16
    want = (a.astype(np.float32) @ b.astype(np.float32)).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(y.astype(np.float32), want.astype(np.float32))
