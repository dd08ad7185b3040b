"""Few-row products run swapped on column-major weights (``passes/weight_layout.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from aioinfer.plugins.numpy.kernels.parallel import matmul
from aioinfer.plugins.numpy.kernels.softmax import softmax
from aioinfer.plugins.numpy.passes.weight_layout import SWAP_MAX_ROWS, SWAP_MIN_WEIGHT

from ._util import check, model


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)


WIDE = 1024  # a WIDE x WIDE weight is large enough to be swapped
assert WIDE * WIDE >= SWAP_MIN_WEIGHT


def _mlp(x: np.ndarray, shared: bool = False, hidden: int = WIDE):
    """x -> MatMul(w1) + b1 -> Relu -> MatMul(w2) + b2 -> Softmax [+ w2 read twice]."""
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]),
             helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["o"]),
             helper.make_node("Add", ["o", "b2"], ["ob"]),
             helper.make_node("Softmax", ["ob"], ["y"])]
    outputs, inputs = ["y"], {"x": x}
    if shared:  # w2 also read by an op that runs: its layout must not change
        nodes.append(helper.make_node("Mul", ["w2", "s"], ["sq"]))
        outputs.append("sq")
        inputs["s"] = rand(1, WIDE)
    k = x.shape[-1]
    weights = {"w1": rand(k, hidden) / 32, "b1": rand(hidden), "w2": rand(hidden, WIDE) / 32,
               "b2": rand(WIDE)}
    return model(nodes, inputs, outputs, weights), inputs


def _weight_layouts(p) -> list[tuple[tuple[int, ...], bool]]:
    """(shape, column-major?) of every 2-D constant of the plan, sorted."""
    return sorted((v.shape, bool(v.flags.f_contiguous and not v.flags.c_contiguous))
                  for v in p.constants.values() if isinstance(v, np.ndarray) and v.ndim == 2)


@pytest.mark.parametrize("shape", [(8, WIDE), (2, 4, WIDE), (1, SWAP_MAX_ROWS, WIDE)])
def test_few_row_chain_runs_swapped_and_matches(shape: tuple[int, ...]) -> None:
    x = rand(*shape)
    p = check(*_mlp(x), rtol=1e-4, atol=1e-5)
    assert _weight_layouts(p) == [((WIDE, WIDE), True)] * 2


def test_many_rows_keep_row_major_weights() -> None:
    x = rand(SWAP_MAX_ROWS + 1, WIDE)
    p = check(*_mlp(x), rtol=1e-4, atol=1e-5)
    assert _weight_layouts(p) == [((WIDE, WIDE), False)] * 2


def test_small_weights_keep_row_major() -> None:
    x = rand(8, 64)
    p = check(*_mlp(x, hidden=64), rtol=1e-4, atol=1e-5)
    assert _weight_layouts(p) == [((64, 64), False), ((64, WIDE), False)]


def test_weight_read_by_another_op_keeps_its_layout() -> None:
    x = rand(4, 64)
    p = check(*_mlp(x, shared=True), rtol=1e-4, atol=1e-5)
    assert _weight_layouts(p) == [((64, WIDE), False), ((WIDE, WIDE), False)]


@pytest.mark.parametrize("trans_b", [0, 1])
def test_few_row_gemm(trans_b: int) -> None:
    x, w, c = rand(6, WIDE), rand(WIDE, WIDE) / 32, rand(WIDE)
    node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=trans_b)
    check(model([node], {"x": x}, ["y"], {"w": w.T.copy() if trans_b else w, "c": c}),
          {"x": x}, rtol=1e-4, atol=1e-5)


def test_swapped_kernel_product_is_column_major_and_exact() -> None:
    a, w = rand(3, 5, WIDE), np.asfortranarray(rand(WIDE, WIDE))
    y = matmul(a, w)
    np.testing.assert_allclose(y, np.matmul(a, np.ascontiguousarray(w)), rtol=1e-4, atol=1e-3)
    assert y.shape == (3, 5, WIDE) and not y.flags.c_contiguous
    chained = matmul(y, w)  # reads y^T row-major
    np.testing.assert_allclose(chained, y @ np.ascontiguousarray(w), rtol=1e-4, atol=1e-2)


def test_softmax_of_a_permuted_layout_normalises_every_row() -> None:
    # An input whose layout is neither C nor F: the fast row-sum path needs C order.
    x = np.ascontiguousarray(rand(2, 4, 6, 5).transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)
    assert not x.flags.c_contiguous
    np.testing.assert_allclose(softmax(x).sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(softmax(x), softmax(np.ascontiguousarray(x)), rtol=1e-6)
