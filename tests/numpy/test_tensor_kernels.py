"""NUMPY shape/indexing/sequence/control-flow kernels on cases the ONNX node tests miss."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from ._ort import assert_matches_ort, make_model, run_ours
from ._ort import one_node_model as _one

pytestmark = pytest.mark.usefixtures("tier")  # NumPy's kernels and the compiled tier

rng = np.random.default_rng(0)
X345 = rng.standard_normal((3, 4, 5)).astype(np.float32)
I64 = np.int64


@pytest.mark.parametrize(
    ("starts", "ends", "axes", "steps"),
    [
        ([-1, 10], [-(2**63), -100], [1, 2], [-1, -2]),  # reverse to the very start
        ([2**62], [0], [0], [-1]),  # start past the end, negative step
        ([-100], [2**63 - 1], [-1], [3]),
        ([1, 0], [1, 5], [0, 2], [1, 1]),  # empty result
    ],
)
def test_slice_clamping(starts, ends, axes, steps):
    inputs = {"x": X345, "s": np.array(starts, I64), "e": np.array(ends, I64),
              "a": np.array(axes, I64), "t": np.array(steps, I64)}
    assert_matches_ort(_one("Slice", inputs), inputs)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_modes_with_cropping(mode):
    inputs = {"x": X345, "p": np.array([0, -1, 2, 1, 2, -2], I64)}
    assert_matches_ort(_one("Pad", inputs, mode=mode), inputs)


def test_pad_axes_input():
    inputs = {"x": X345, "p": np.array([1, 2, 3, 0], I64), "v": np.array(7, np.float32),
              "a": np.array([-1, 0], I64)}
    assert_matches_ort(_one("Pad", inputs), inputs)


def test_reshape_allowzero_and_copy_zero():
    x = np.zeros((0, 3), np.float32)
    inputs = {"x": x, "s": np.array([3, 0], I64)}
    assert_matches_ort(_one("Reshape", inputs, allowzero=1), inputs)
    inputs = {"x": X345, "s": np.array([0, -1], I64)}
    assert_matches_ort(_one("Reshape", inputs), inputs)


def test_gather_nd_batch_dims_negative_indices():
    inputs = {"x": X345, "i": np.array([[[-1, 0], [2, -5]], [[0, 0], [3, 4]], [[1, 1], [-4, 2]]],
                                       I64)}
    assert_matches_ort(_one("GatherND", inputs, batch_dims=1), inputs)


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
def test_scatter_elements_reductions_with_duplicates(reduction):
    data = rng.standard_normal((3, 4)).astype(np.float32)
    inputs = {"d": data, "i": np.array([[1, 1, -1], [0, 0, 0]], I64),
              "u": np.array([[5, -1, 2], [3, 4, -6]], np.float32)}
    if reduction == "none":
        inputs["i"] = np.array([[1, 2, -1], [0, 3, 2]], I64)
    assert_matches_ort(_one("ScatterElements", inputs, axis=1, reduction=reduction), inputs)


@pytest.mark.parametrize("reduction", ["add", "max"])
def test_scatter_nd_reductions_with_duplicates(reduction):
    inputs = {"d": X345, "i": np.array([[0, 1], [0, 1], [2, 3]], I64),
              "u": rng.standard_normal((3, 5)).astype(np.float32)}
    assert_matches_ort(_one("ScatterND", inputs, reduction=reduction), inputs)


@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_unique_all_outputs(sorted_, axis):
    x = np.array([[2, 1, 2], [0, 5, 0], [2, 1, 2], [0, 5, 1]], np.float32)
    attrs = {"sorted": sorted_} if axis is None else {"sorted": sorted_, "axis": axis}
    assert_matches_ort(_one("Unique", {"x": x}, n_out=4, **attrs), {"x": x})


def test_onehot_negative_indices_middle_axis():
    inputs = {"i": np.array([[0, -1, 3], [-3, 2, 7]], I64), "d": np.array(3, I64),
              "v": np.array([-2, 5], np.float32)}
    assert_matches_ort(_one("OneHot", inputs, axis=1), inputs)


def test_reverse_sequence_batch_major():
    inputs = {"x": X345, "l": np.array([4, 1, 2], I64)}
    assert_matches_ort(_one("ReverseSequence", inputs, batch_axis=0, time_axis=1), inputs)


def test_range_negative_float_delta():
    inputs = {"s": np.array(1.0, np.float32), "l": np.array(-2.1, np.float32),
              "d": np.array(-0.3, np.float32)}
    assert_matches_ort(_one("Range", inputs), inputs)


def test_expand_output_is_writable():
    inputs = {"x": np.arange(3, dtype=np.float32), "s": np.array([2, 1], I64)}
    (out,) = assert_matches_ort(_one("Expand", inputs), inputs)
    out += 1  # a broadcast view would be read-only


def test_nonzero_scalar_and_compress_without_axis():
    x = np.array(3.0, np.float32)
    assert run_ours(_one("NonZero", {"x": x}), {"x": x})[0].shape == (0, 1)
    inputs = {"x": X345, "c": np.array([0, 1, 1, 0, 1], bool)}
    assert_matches_ort(_one("Compress", inputs), inputs)


def test_tensor_scatter_circular():
    cache = np.zeros((2, 1, 4, 3), np.float32)
    update = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    inputs = {"c": cache, "u": update, "w": np.array([2, 0], I64)}
    model = _one("TensorScatter", inputs, opset=24, mode="circular")
    (out,) = run_ours(model, inputs)
    np.testing.assert_array_equal(out[0, 0, [2, 3, 0]], update[0, 0])
    np.testing.assert_array_equal(out[1, 0, :3], update[1, 0])
    assert out[1, 0, 3].sum() == 0


def test_split_to_sequence_scalar_split_and_concat_new_axis():
    nodes = [
        helper.make_node("SplitToSequence", ["x", "n"], ["seq"], axis=1),
        helper.make_node("SequenceErase", ["seq", "p"], ["seq2"]),
        helper.make_node("SequenceLength", ["seq2"], ["len"]),
        helper.make_node("ConcatFromSequence", ["seq2"], ["y"], axis=-1, new_axis=0),
    ]
    inputs = {"x": X345, "n": np.array(3, I64), "p": np.array(-1, I64)}
    model = make_model(nodes, inputs, ["len", "y"], opset=21)
    length, y = run_ours(model, inputs)
    assert length == 1 and y.shape == (3, 3, 5)


def _counting_loop(n_iters: int):
    """Loop adding the iteration number to ``x``; each step's sum is a scan output."""
    body = helper.make_graph(
        [helper.make_node("Add", ["acc", "i"], ["acc_out"]),
         helper.make_node("Unsqueeze", ["acc_out", "zero"], ["scan"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("scan", TensorProto.INT64, [1, 2])],
        initializer=[helper.make_tensor("zero", TensorProto.INT64, [1], [0])],
    )
    node = helper.make_node("Loop", ["m", "", "x"], ["final", "scans"], body=body)
    inputs = {"m": np.array(n_iters, I64), "x": np.array([1, 2], I64)}
    return make_model([node], inputs, ["final", "scans"], opset=21), inputs


def test_loop_scan_outputs():
    model, inputs = _counting_loop(3)
    final, scans = assert_matches_ort(model, inputs)
    assert scans.shape == (3, 1, 2)


def test_loop_zero_iterations():
    # the scan output keeps the body's declared type and dims: int64 (0, 1, 2), as onnxruntime
    model, inputs = _counting_loop(0)
    final, scans = assert_matches_ort(model, inputs)
    np.testing.assert_array_equal(final, inputs["x"])
    assert scans.shape == (0, 1, 2) and scans.dtype == np.int64


@pytest.mark.parametrize("steps", [3, 0])
def test_scan_reverse_directions_and_output_axis(steps: int):
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "x"], ["s2"]),
         helper.make_node("Add", ["s2", "x"], ["y"])],
        "body",
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("s2", TensorProto.FLOAT, [4]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    node = helper.make_node(
        "Scan", ["init", "xs"], ["final", "ys"], body=body, num_scan_inputs=1,
        scan_input_axes=[1], scan_input_directions=[1], scan_output_axes=[-1],
        scan_output_directions=[1],
    )
    inputs = {"init": np.zeros(4, np.float32),
              "xs": rng.standard_normal((4, steps)).astype(np.float32)}
    model = make_model([node], inputs, ["final", "ys"])
    if steps:
        final, ys = assert_matches_ort(model, inputs)
    else:  # onnxruntime 1.2x dies of SIGFPE on a zero-length Scan: check against the spec
        final, ys = run_ours(model, inputs)
        np.testing.assert_array_equal(final, inputs["init"])
    assert ys.shape == (4, steps) and ys.dtype == np.float32


def test_constant_sparse_value_and_value_forms():
    from onnx import numpy_helper

    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([5, 7], np.float32), "v"),
        numpy_helper.from_array(np.array([[0, 2], [1, 0]], I64), "i"), [2, 3],
    )
    nodes = [helper.make_node("Constant", [], ["s"], sparse_value=sparse),
             helper.make_node("Constant", [], ["f"], value_floats=[1.5, 2.5]),
             helper.make_node("Constant", [], ["i"], value_int=3)]
    s, f, i = run_ours(make_model(nodes, {}, ["s", "f", "i"]), {})
    np.testing.assert_array_equal(s, [[0, 0, 5], [7, 0, 0]])
    assert f.dtype == np.float32 and i.dtype == np.int64 and i.shape == ()


def test_scan8_sequence_lens_per_batch():
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "x"], ["s2"]),
         helper.make_node("Add", ["s2", "s2"], ["y"])],
        "body",
        [helper.make_tensor_value_info("s", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("s2", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
    )
    node = helper.make_node("Scan", ["lens", "init", "xs"], ["final", "ys"], body=body,
                            num_scan_inputs=1, directions=[1])
    inputs = {"lens": np.array([3, 1], np.int32), "init": np.ones((2, 2), np.float32),
              "xs": rng.standard_normal((2, 3, 2)).astype(np.float32)}
    final, ys = run_ours(make_model([node], inputs, ["final", "ys"], opset=8), inputs)
    np.testing.assert_allclose(final[1], 1 + inputs["xs"][1, 0], rtol=1e-6)
    np.testing.assert_allclose(final[0], 1 + inputs["xs"][0].sum(0), rtol=1e-6)
    assert ys.shape == (2, 3, 2) and not ys[1, 1:].any()
