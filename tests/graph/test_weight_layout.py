"""Few-row products run swapped on column-major weights (``graph/weight_layout.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from aioinfer.graph.weight_layout import SWAP_MAX_ROWS
from aioinfer.plugins.numpy.kernels.parallel import matmul
from aioinfer.plugins.numpy.kernels.softmax import softmax

from ._util import check, model


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


def _mlp(x: np.ndarray, shared: bool = False):
    """x -> MatMul(w1) + b1 -> Gelu-free Relu -> MatMul(w2) + b2 -> Softmax [+ w2 read twice]."""
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["o"]),
             helper.make_node("Add", ["o", "b2"], ["ob"]),
             helper.make_node("Softmax", ["ob"], ["y"])]
    outputs = ["y"]
    if shared:  # w2 also read by an elementwise op: its layout must not change
        nodes.append(helper.make_node("Mul", ["w2", "w2"], ["sq"]))
        outputs.append("sq")
    k = x.shape[-1]
    weights = {"w1": rand(k, 48), "b1": rand(48), "w2": rand(48, 40), "b2": rand(40)}
    return model(nodes, {"x": x}, outputs, weights)


def _weight_layouts(p) -> dict[tuple[int, ...], bool]:
    return {v.shape: bool(v.flags.f_contiguous and not v.flags.c_contiguous)
            for v in p.constants.values() if isinstance(v, np.ndarray) and v.ndim == 2}


@pytest.mark.parametrize("shape", [(8, 32), (2, 4, 32), (1, SWAP_MAX_ROWS, 32)])
def test_few_row_chain_runs_swapped_and_matches(shape: tuple[int, ...]) -> None:
    x = rand(*shape)
    p = check(_mlp(x), {"x": x}, rtol=1e-4, atol=1e-5)
    assert _weight_layouts(p) == {(32, 48): True, (48, 40): True}


def test_many_rows_keep_row_major_weights() -> None:
    x = rand(SWAP_MAX_ROWS + 1, 32)
    p = check(_mlp(x), {"x": x}, rtol=1e-4, atol=1e-5)
    assert _weight_layouts(p) == {(32, 48): False, (48, 40): False}


def test_weight_read_by_another_op_keeps_its_layout() -> None:
    x = rand(4, 32)
    p = check(_mlp(x, shared=True), {"x": x}, rtol=1e-4, atol=1e-5)
    assert _weight_layouts(p) == {(32, 48): True, (48, 40): False}


@pytest.mark.parametrize("trans_b", [0, 1])
def test_few_row_gemm(trans_b: int) -> None:
    x, w, c = rand(6, 24), rand(24, 16), rand(16)
    node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=trans_b)
    check(model([node], {"x": x}, ["y"], {"w": w.T.copy() if trans_b else w, "c": c}),
          {"x": x}, rtol=1e-4, atol=1e-5)


def test_swapped_kernel_product_is_column_major_and_exact() -> None:
    a, w = rand(3, 5, 32), np.asfortranarray(rand(32, 64))
    y = matmul(a, w)
    np.testing.assert_allclose(y, np.matmul(a, np.ascontiguousarray(w)), rtol=1e-5, atol=1e-5)
    assert y.shape == (3, 5, 64) and not y.flags.c_contiguous
    chained = matmul(y, np.asfortranarray(rand(64, 8)))  # reads y^T row-major
    assert chained.shape == (3, 5, 8)


def test_softmax_of_a_permuted_layout_normalises_every_row() -> None:
    # An input whose layout is neither C nor F: the fast row-sum path needs C order.
    x = np.ascontiguousarray(rand(2, 4, 6, 5).transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(softmax(x).sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(softmax(x), softmax(np.ascontiguousarray(x)), rtol=1e-6)
