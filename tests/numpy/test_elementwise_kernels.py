"""NUMPY element-wise, cast, reduce, cumulative and TopK kernels on cases the node tests miss."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from aioinfer.plugins.numpy.kernels.activations import sigmoid
from aioinfer.plugins.numpy.kernels.elementwise import erf

from ._ort import assert_matches_ort, make_model, run_ours
from ._ort import one_node_model as _one

pytestmark = pytest.mark.usefixtures("tier")  # NumPy's kernels and the compiled tier

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4, 5)).astype(np.float32)
I64 = np.int64


# --- erf ------------------------------------------------------------------------------------


def test_erf_matches_math_erf_on_dense_grid():
    x = np.linspace(-7.0, 7.0, 200_001)
    expected = np.array([math.erf(v) for v in x])
    got = erf(x)
    assert got.dtype == np.float64
    rel = np.abs(got - expected) / np.maximum(np.abs(expected), 1e-300)
    assert rel.max() < 1e-14
    got32 = erf(x.astype(np.float32))
    assert got32.dtype == np.float32
    exp32 = np.array([math.erf(float(v)) for v in x.astype(np.float32)])
    # float32 is evaluated in float32 (a rational approximation): ~4.3e-7 relative at worst.
    np.testing.assert_allclose(got32, exp32, rtol=5e-7, atol=1e-37)
    assert np.abs(got32).max() <= 1.0


def test_erf_special_values():
    got = erf(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30], np.float32))
    np.testing.assert_array_equal(got[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(got[1]) and np.isnan(got[4])
    assert math.isclose(got[5], 2 / math.sqrt(math.pi) * 1e-30, rel_tol=2e-7)


# --- arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int8])
def test_integer_div_truncates_toward_zero(dtype):
    a = np.array([7, -7, 7, -7, 0, 6, -6, 1], dtype)
    b = np.array([2, 2, -2, -2, 3, -4, 4, -3], dtype)
    (got,) = run_ours(_one("Div", {"a": a, "b": b}), {"a": a, "b": b})
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, [3, -3, -3, 3, 0, -1, -1, 0])


@pytest.mark.parametrize("fmod", [0, 1])
def test_integer_mod_matches_ort(fmod):
    inputs = {"a": np.array([7, -7, 7, -7, 5], np.int32),
              "b": np.array([3, 3, -3, -3, 5], np.int32)}
    assert_matches_ort(_one("Mod", inputs, fmod=fmod), inputs)


@pytest.mark.parametrize(
    ("base", "exponent"),
    [
        (np.array([1, 2, 3], np.int64), np.array([2.0, 3.0, 0.5], np.float32)),
        (np.array([1.5, 2, -3], np.float32), np.array([2, 3, 3], np.int64)),
        (np.array([2, 3, -4], np.int32), np.array([3, 2, 3], np.int64)),
    ],
)
def test_pow_mixed_types_keep_base_type(base, exponent):
    inputs = {"a": base, "b": exponent}
    assert_matches_ort(_one("Pow", inputs, opset=15), inputs)


def test_legacy_broadcast_with_axis():
    a = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    b = rng.standard_normal((3, 4)).astype(np.float32)
    model = _one("Add", {"a": a, "b": b}, opset=6, broadcast=1, axis=1)
    (got,) = run_ours(model, {"a": a, "b": b})
    np.testing.assert_array_equal(got, a + b[:, :, None])


@pytest.mark.parametrize("op", ["Add", "Mul", "Exp", "Sqrt", "Erf", "Sigmoid", "Gelu", "Relu",
                                "Softplus", "HardSwish", "Mish"])
def test_scalar_results_are_arrays_of_input_dtype(op):
    x = np.array(0.75, np.float32)
    inputs = {"x": x, "y": x} if op in ("Add", "Mul") else {"x": x}
    (got,) = run_ours(_one(op, inputs, opset=21), inputs)
    assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == np.float32


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
def test_variadic_broadcasts_three_inputs(op):
    inputs = {"a": X, "b": X[0, :, :1], "c": X[:1, :1, :]}
    assert_matches_ort(_one(op, inputs, opset=13), inputs)


def test_clip_with_only_max_on_integers():
    x = np.array([-5, 0, 5, 10], np.int32)
    model = make_model([helper.make_node("Clip", ["x", "", "hi"], ["y0"])],
                       {"x": x, "hi": np.array(4, np.int32)}, ["y0"], opset=13)
    (got,) = run_ours(model, {"x": x, "hi": np.array(4, np.int32)})
    np.testing.assert_array_equal(got, [-5, 0, 4, 4])
    assert got.dtype == np.int32


# --- activations ----------------------------------------------------------------------------


def test_sigmoid_is_stable_at_extremes():
    x = np.array([-1000.0, -100.0, -20.0, 0.0, 20.0, 1000.0], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = sigmoid(x)
    xd = x.astype(np.float64)
    expected = np.exp(-np.logaddexp(0.0, -xd))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-40)
    assert got.dtype == np.float32


@pytest.mark.parametrize(
    ("op", "opset", "attrs"),
    [
        ("Gelu", 20, {"approximate": "tanh"}),
        ("Gelu", 20, {}),
        ("Softplus", 21, {}),
        ("Selu", 21, {}),
        ("Elu", 21, {"alpha": 0.5}),
        ("Celu", 21, {"alpha": 2.0}),
        ("HardSigmoid", 21, {"alpha": 0.3, "beta": 0.4}),
        ("Mish", 21, {}),
        ("Shrink", 21, {"bias": 0.5, "lambd": 0.7}),
    ],
)
def test_activations_match_ort(op, opset, attrs):
    inputs = {"x": np.concatenate([X.ravel() * 4, [-200.0, 200.0]]).astype(np.float32)}
    assert_matches_ort(_one(op, inputs, opset=opset, **attrs), inputs)


def test_shrink_keeps_integer_dtype():
    x = np.array([-5, -1, 0, 1, 5], np.int32)
    (got,) = run_ours(_one("Shrink", {"x": x}, bias=2.0, lambd=1.5), {"x": x})
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [-3, 0, 0, 0, 3])


# --- logic ----------------------------------------------------------------------------------


def test_bitshift_signed_and_out_of_range_counts_opset28():
    x = np.array([-8, -8, 8, 1, -1, 5], np.int32)
    y = np.array([1, 40, 40, 31, -1, 0], np.int32)
    right = run_ours(_one("BitShift", {"x": x, "y": y}, opset=28, direction="RIGHT"),
                     {"x": x, "y": y})[0]
    left = run_ours(_one("BitShift", {"x": x, "y": y}, opset=28, direction="LEFT"),
                    {"x": x, "y": y})[0]
    np.testing.assert_array_equal(right, [-4, -1, 0, 0, -1, 5])
    np.testing.assert_array_equal(left, [-16, 0, 0, -(2**31), 0, 5])


def test_string_equal():
    a = np.array(["a", "bc", ""], dtype=object)
    b = np.array(["a", "b", ""], dtype=object)
    (got,) = run_ours(_one("Equal", {"a": a, "b": b}, opset=19), {"a": a, "b": b})
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, [True, False, True])


# --- cast -----------------------------------------------------------------------------------


def test_cast_strings_to_float_and_back():
    s = np.array(["1.5", "-2e3", "INF", "-inf", "NaN", "+INF"], dtype=object)
    (got,) = run_ours(_one("Cast", {"s": s}, to=TensorProto.FLOAT), {"s": s})
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [1.5, -2000.0, np.inf, -np.inf, np.nan, np.inf])
    x = np.array([1.5, -2.25, 100.0], np.float32)
    (back,) = run_ours(_one("Cast", {"x": x}, to=TensorProto.STRING), {"x": x})
    assert back.dtype == object
    np.testing.assert_array_equal(np.array(back, dtype=np.float32), x)


def test_cast_string_to_int64():
    s = np.array(["12", "-7", "1e3"], dtype=object)
    (got,) = run_ours(_one("Cast", {"s": s}, to=TensorProto.INT64), {"s": s})
    np.testing.assert_array_equal(got, [12, -7, 1000])
    assert got.dtype == np.int64


@pytest.mark.parametrize("saturate", [0, 1])
@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
def test_cast_to_e8m0_matches_numpy_helper(saturate, round_mode):
    x = np.array([0.0, 0.124, 0.25, 0.75, 1.1, 1.5, 3.0, 1e38, 3e38, np.inf, np.nan, 1e-40],
                 np.float32)
    model = _one("Cast", {"x": x}, opset=24, to=TensorProto.FLOAT8E8M0, saturate=saturate,
                 round_mode=round_mode)
    (got,) = run_ours(model, {"x": x})
    expected = numpy_helper.to_float8e8m0(x, bool(saturate), round_mode)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize(
    ("to", "saturate", "expected"),
    [
        (TensorProto.FLOAT8E4M3FN, 1, [448.0, -448.0, 448.0]),
        (TensorProto.FLOAT8E4M3FN, 0, [np.nan, np.nan, np.nan]),
        (TensorProto.FLOAT8E5M2, 0, [np.inf, -np.inf, np.inf]),
        (TensorProto.FLOAT8E5M2, 1, [57344.0, -57344.0, 57344.0]),
    ],
)
def test_cast_float8_out_of_range(to, saturate, expected):
    x = np.array([1e6, -np.inf, np.inf], np.float32)
    (got,) = run_ours(_one("Cast", {"x": x}, opset=21, to=to, saturate=saturate), {"x": x})
    np.testing.assert_array_equal(got.astype(np.float32), np.array(expected, np.float32))


def test_bitcast_bfloat16_to_uint16():
    x = np.array([1.0, -2.0], ml_dtypes.bfloat16)
    (got,) = run_ours(_one("BitCast", {"x": x}, opset=26, to=TensorProto.UINT16), {"x": x})
    np.testing.assert_array_equal(got, [0x3F80, 0xC000])


# --- reductions -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                                "ReduceL1", "ReduceL2", "ReduceLogSumExp", "ReduceSumSquare",
                                "ReduceMean"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_matches_ort(op, keepdims):
    inputs = {"x": X, "axes": np.array([0, -1], I64)}
    assert_matches_ort(_one(op, inputs, opset=18, keepdims=keepdims), inputs)


@pytest.mark.parametrize(
    ("op", "fill"),
    [("ReduceSum", 0.0), ("ReduceProd", 1.0), ("ReduceMax", -np.inf), ("ReduceMin", np.inf),
     ("ReduceLogSumExp", -np.inf), ("ReduceL2", 0.0)],
)
def test_reduce_over_empty_axis(op, fill):
    x = np.zeros((2, 0, 3), np.float32)
    inputs = {"x": x, "axes": np.array([1], I64)}
    (got,) = run_ours(_one(op, inputs, opset=18, keepdims=0), inputs)
    assert got.shape == (2, 3) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.full((2, 3), fill, np.float32))


def test_reduce_noop_with_empty_axes_and_scalar_result():
    inputs = {"x": X}
    (same,) = run_ours(_one("ReduceSum", inputs, opset=13, noop_with_empty_axes=1), inputs)
    np.testing.assert_array_equal(same, X)
    (total,) = run_ours(_one("ReduceMax", inputs, opset=18, keepdims=0), inputs)
    assert isinstance(total, np.ndarray) and total.shape == () and total == X.max()


def test_reduce_integer_max_of_empty_is_dtype_min():
    x = np.zeros((0, 2), np.int32)
    (got,) = run_ours(_one("ReduceMax", {"x": x}, opset=13, axes=[0], keepdims=1), {"x": x})
    np.testing.assert_array_equal(got, [[np.iinfo(np.int32).min] * 2])


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("last", [0, 1])
def test_argmax_ties_match_ort(op, last):
    x = np.array([[1, 3, 3, 0], [2, 2, 0, 0]], np.float32)
    assert_matches_ort(_one(op, {"x": x}, opset=13, axis=1, keepdims=0,
                            select_last_index=last), {"x": x})


# --- cumulative / TopK ----------------------------------------------------------------------


@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_cumsum_matches_ort(exclusive, reverse, dtype):
    inputs = {"x": (X * 10).astype(dtype), "axis": np.array(1, I64)}
    assert_matches_ort(_one("CumSum", inputs, opset=14, exclusive=exclusive, reverse=reverse),
                       inputs)


def test_cumprod_exclusive_reverse():
    x = np.array([[1, 2, 3], [4, 5, 6]], np.int64)
    inputs = {"x": x, "axis": np.array([-1], I64)}
    (got,) = run_ours(_one("CumProd", inputs, opset=26, exclusive=1, reverse=1), inputs)
    np.testing.assert_array_equal(got, [[6, 3, 1], [30, 6, 1]])


@pytest.mark.parametrize("largest", [0, 1])
def test_topk_ties_prefer_lower_index(largest):
    x = np.array([[3, 1, 3, 2, 1, 3], [0, 0, 0, 0, 0, 0]], np.float32)
    inputs = {"x": x, "k": np.array([4], I64)}
    values, idx = run_ours(_one("TopK", inputs, n_out=2, opset=11, largest=largest), inputs)
    if largest:
        np.testing.assert_array_equal(idx, [[0, 2, 5, 3], [0, 1, 2, 3]])
        np.testing.assert_array_equal(values, [[3, 3, 3, 2], [0, 0, 0, 0]])
    else:
        np.testing.assert_array_equal(idx, [[1, 4, 3, 0], [0, 1, 2, 3]])
    assert idx.dtype == np.int64 and values.dtype == np.float32


def test_topk_int_matches_ort():
    x = rng.integers(0, 5, (4, 9)).astype(np.int32)
    inputs = {"x": x, "k": np.array([3], I64)}
    assert_matches_ort(_one("TopK", inputs, n_out=2, opset=11, axis=1), inputs)


def test_topk_unsigned_ties():
    x = np.array([[0, 2**64 - 1, 5, 2**64 - 1, 0]], np.uint64)
    inputs = {"x": x, "k": np.array([5], I64)}
    values, idx = run_ours(_one("TopK", inputs, n_out=2, opset=11), inputs)
    np.testing.assert_array_equal(idx, [[1, 3, 2, 0, 4]])
    assert values.dtype == np.uint64


@pytest.mark.parametrize(
    ("cshape", "xshape", "yshape", "dtype"),
    [
        ((3, 4, 5), (3, 4, 5), (3, 4, 5), np.float32),
        ((4, 1), (3, 1, 5), (5,), np.int64),
        ((), (2, 3), (), np.float16),
        ((2, 3), (), (), np.bool_),
        ((), (), (), np.uint8),
    ],
)
def test_where_bit_select_matches_np_where(cshape, xshape, yshape, dtype):
    cond = rng.random(cshape) > 0.5
    x = (rng.standard_normal(xshape) * 10).astype(dtype)
    y = (rng.standard_normal(yshape) * 10).astype(dtype)
    (got,) = run_ours(_one("Where", {"c": cond, "x": x, "z": y}, opset=16),
                      {"c": np.asarray(cond), "x": np.asarray(x), "z": np.asarray(y)})
    expected = np.where(cond, x, y)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_where_keeps_nan_inf_and_strings():
    cond = np.array([True, False, True, False])
    x = np.array([np.nan, 1.0, -np.inf, -0.0], np.float64)
    y = np.array([2.0, np.nan, 3.0, np.inf], np.float64)
    (got,) = run_ours(_one("Where", {"c": cond, "x": x, "z": y}, opset=16),
                      {"c": cond, "x": x, "z": y})
    np.testing.assert_array_equal(got, [np.nan, np.nan, -np.inf, np.inf])
    s = np.array(["a", "b", "c", "d"], dtype=object)
    t = np.array(["w", "x", "y", "z"], dtype=object)
    (strs,) = run_ours(_one("Where", {"c": cond, "x": s, "z": t}, opset=16),
                       {"c": cond, "x": s, "z": t})
    np.testing.assert_array_equal(strs, np.array(["a", "x", "c", "z"], dtype=object))


@pytest.mark.parametrize("alpha", [0.01, 0.0, 1.0, 1.5, -0.5])
def test_leaky_relu_any_alpha(alpha):
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.nan, -np.inf], np.float32)
    with np.errstate(invalid="ignore"):  # -inf * 0 is nan, by IEEE as by the spec
        (got,) = run_ours(_one("LeakyRelu", {"x": x}, opset=16, alpha=alpha), {"x": x})
        expected = np.where(x < 0, x * np.float32(alpha), x)
    np.testing.assert_array_equal(got, expected)
    assert got.dtype == np.float32


def test_cast_opset1_string_target_and_legacy_consumed_inputs():
    x = np.array([1.7, -2.2], np.float32)
    (got,) = run_ours(_one("Cast", {"x": x}, opset=1, to="INT32"), {"x": x})
    np.testing.assert_array_equal(got, np.array([1, -2], np.int32))
    (neg,) = run_ours(_one("Neg", {"x": x}, opset=1, consumed_inputs=[0]), {"x": x})
    np.testing.assert_array_equal(neg, -x)


# --- fast paths on large inputs -------------------------------------------------------------


def test_float32_to_float16_bit_exact_on_dense_sweep():
    from aioinfer.plugins.numpy.kernels.cast import float32_to_float16

    sweep = np.arange(0, 1 << 32, 256, dtype=np.uint64).astype(np.uint32)  # 2^24 patterns
    edges = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
                      0x7F800001, 0x7F802000, 0x7FFFFFFF, 0x477FEFFF, 0x477FF000, 0x477FE000,
                      0x387FC000, 0x387FE000, 0x33000000, 0x33000001, 0x32FFFFFF, 0x38800000,
                      0x337FFFFF, 0x00000001, 0x3F801000, 0x3F803000], np.uint32)
    bits = np.concatenate([sweep, edges, edges | 0x80000000, sweep + 0x1000, sweep + 0xFFF])
    x = bits.view(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        expected = x.astype(np.float16).view(np.uint16)
    got = float32_to_float16(x).view(np.uint16)
    np.testing.assert_array_equal(got, expected)


def test_cast_float16_large_non_contiguous():
    x = (rng.standard_normal((64, 300)) * 3e4).astype(np.float32)[:, ::3]
    (got,) = run_ours(_one("Cast", {"x": x}, to=TensorProto.FLOAT16), {"x": x})
    with np.errstate(over="ignore"):
        expected = x.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(got.view(np.uint16), expected)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_large_input_and_tails(approximate):
    x = np.concatenate([np.linspace(-12, 12, 150_001), [-1e4, -200.0, 200.0, 1e4]])
    x32 = x.astype(np.float32)
    got = run_ours(_one("Gelu", {"x": x32}, opset=20, approximate=approximate), {"x": x32})[0]
    if approximate == "none":
        expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x32.tolist()])
    else:
        xd = x32.astype(np.float64)
        expected = 0.5 * xd * (1 + np.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd**3)))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert (got[x32 < -6] == 0).all()


def test_gelu_float64_and_float16():
    x = np.linspace(-5, 5, 1001)
    expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(run_ours(_one("Gelu", {"x": x}, opset=20), {"x": x})[0],
                               expected, rtol=1e-13, atol=1e-15)
    x16 = x.astype(np.float16)
    (got,) = run_ours(_one("Gelu", {"x": x16}, opset=20), {"x": x16})
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float64])
def test_relu_large_blocked(dtype):
    x = (rng.standard_normal(200_003) * 10).astype(dtype)
    x[:3] = [0, -1, 1]
    if dtype != np.int32:
        x[3] = np.nan
    (got,) = run_ours(_one("Relu", {"x": x}), {"x": x})
    np.testing.assert_array_equal(got, np.maximum(x, 0))
    assert got.dtype == dtype


def test_sigmoid_large_matches_ort():
    inputs = {"x": (rng.standard_normal(100_000) * 8).astype(np.float32)}
    assert_matches_ort(_one("Sigmoid", inputs), inputs)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceSumSquare", "ReduceL2"])
@pytest.mark.parametrize(("axes", "keepdims"), [([-1], 1), ([2, 3], 0), ([3, 2], 1), ([1], 0)])
def test_reduce_trailing_axes_fast_path(op, axes, keepdims):
    x = rng.standard_normal((2, 8, 14, 14)).astype(np.float32)
    inputs = {"x": x, "axes": np.array(axes, np.int64)}
    (got,) = run_ours(_one(op, inputs, opset=18, keepdims=keepdims), inputs)
    xd, ax = x.astype(np.float64), tuple(axes)
    expected = {"ReduceSum": lambda: xd.sum(ax, keepdims=bool(keepdims)),
                "ReduceMean": lambda: xd.mean(ax, keepdims=bool(keepdims)),
                "ReduceSumSquare": lambda: (xd * xd).sum(ax, keepdims=bool(keepdims)),
                "ReduceL2": lambda: np.sqrt((xd * xd).sum(ax, keepdims=bool(keepdims)))}[op]()
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
