"""Fused kernels cut over several intra-op threads give the one-thread answer (and ORT's)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from onnx import helper

from aioinfer.plugins.numpy.kernels import conv_fast, jit, parallel, pool, winograd

from .passes._util import check, model, ops

pytestmark = pytest.mark.usefixtures("tier")  # NumPy's kernels and the compiled tier


def rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(sum(shape)).standard_normal(shape) * scale).astype(np.float32)


@pytest.fixture(params=[1, 2, 3])
def threads(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """Every size worth splitting, with 1, 2 and 3 intra-op threads."""
    monkeypatch.setattr(parallel, "_MIN_FLOPS", 0)
    monkeypatch.setattr(conv_fast, "_MIN_COPY", 0)
    monkeypatch.setattr(winograd, "_MIN_TRANSFORM", 0)
    monkeypatch.setattr(pool, "_MIN_WORK", 0)
    for kind in jit.MIN_WORK:
        monkeypatch.setitem(jit.MIN_WORK, kind, 0)
    parallel.set_intra_threads(request.param)
    yield request.param
    parallel.set_intra_threads(1)


def _conv_chain(x, w, b, residual: bool, **conv_attrs):
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], **conv_attrs)]
    inputs = {"x": x}
    last = "c"
    if residual:
        nodes.append(helper.make_node("Add", ["c", "r"], ["s"]))
        last = "s"
    nodes.append(helper.make_node("Relu", [last], ["y"]))
    return nodes, inputs


@pytest.mark.parametrize("kernel,strides,group", [(1, 1, 1), (1, 2, 1), (3, 1, 1), (3, 2, 1),
                                                  (7, 2, 1), (1, 1, 4), (3, 1, 8)])
@pytest.mark.parametrize("residual", [False, True])
def test_fused_conv_in_blocks(threads: int, kernel: int, strides: int, group: int,
                              residual: bool) -> None:
    c, m = (8, 8) if group > 1 else (3 if kernel == 7 else 6, 10)
    x = rand(2, c, 11, 9)
    w, b = rand(m, c // group, kernel, kernel, scale=0.3), rand(m)
    pad = kernel // 2
    nodes, inputs = _conv_chain(x, w, b, residual, pads=[pad] * 4, strides=[strides] * 2,
                                group=group)
    out = (11 + 2 * pad - kernel) // strides + 1, (9 + 2 * pad - kernel) // strides + 1
    inits = {"w": w, "b": b}
    if residual:
        inputs["r"] = rand(2, m, *out)
    p = check(model(nodes, inputs, ["y"], inits), inputs, rtol=1e-4, atol=1e-4)
    assert ops(p) == ["FusedConv"]


@pytest.mark.parametrize("size", [(14, 14), (15, 17), (16, 18)])
@pytest.mark.parametrize("residual", [False, True])
def test_winograd_conv_in_blocks(threads: int, size: tuple[int, int], residual: bool) -> None:
    x = rand(1, 64, *size)
    w, b = rand(64, 64, 3, 3, scale=0.05), rand(64)
    nodes, inputs = _conv_chain(x, w, b, residual, pads=[1, 1, 1, 1])
    if residual:
        inputs["r"] = rand(1, 64, *size)
    p = check(model(nodes, inputs, ["y"], {"w": w, "b": b}), inputs, rtol=1e-4, atol=1e-4)
    assert ops(p) == ["WinogradConv"]


@pytest.mark.parametrize("dilation", [1, 2])
def test_depthwise_flat_runs(threads: int, dilation: int) -> None:
    x, w, b = rand(2, 6, 9, 11), rand(12, 1, 3, 3), rand(12)
    pad = dilation
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], group=6, pads=[pad, pad, 0, pad],
                              dilations=[dilation, dilation])]
    check(model(nodes, {"x": x}, ["y"], {"w": w, "b": b}), {"x": x}, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("residual", [False, True])
def test_many_in_few_out_channels_as_shifted_products(threads: int, dilation: int,
                                                      residual: bool) -> None:
    x, w, b = rand(2, 64, 9, 7), rand(16, 64, 3, 3, scale=0.1), rand(16)  # few rows per tile
    nodes, inputs = _conv_chain(x, w, b, residual, pads=[dilation] * 4,
                                dilations=[dilation, dilation])
    if residual:
        inputs["r"] = rand(2, 16, 9, 7)
    p = check(model(nodes, inputs, ["y"], {"w": w, "b": b}), inputs, rtol=1e-4, atol=1e-4)
    assert ops(p) == ["FusedConv"]


def test_broadcast_residual_is_added_before_the_activation(threads: int) -> None:
    x, w, b = rand(1, 4, 6, 6), rand(6, 4, 3, 3), rand(6)
    nodes, inputs = _conv_chain(x, w, b, True, pads=[1, 1, 1, 1])
    inputs["r"] = rand(1, 6, 1, 6)
    check(model(nodes, inputs, ["y"], {"w": w, "b": b}), inputs, rtol=1e-4, atol=1e-4)


def test_run_blocks_covers_the_range_once(threads: int) -> None:
    seen = np.zeros(37, dtype=np.int64)

    def fill(lo: int, hi: int) -> None:
        seen[lo:hi] += 1

    parallel.run_blocks(fill, 37, 1.0)
    assert (seen == 1).all()


def test_run_blocks_raises_the_error_of_a_block(threads: int) -> None:
    def fail(lo: int, hi: int) -> None:
        if hi == 10:
            raise ValueError("last block")

    with pytest.raises(ValueError, match="last block"):
        parallel.run_blocks(fail, 10, 1.0)


@pytest.mark.parametrize("op,attrs", [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2])),
    ("MaxPool", dict(kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 1, 1], ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[2, 3], pads=[1, 1, 0, 1], count_include_pad=1)),
])
def test_pools_in_blocks(threads: int, op: str, attrs: dict) -> None:
    x = rand(2, 5, 11, 9)
    check(model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": x}, ["y"]), {"x": x})
