"""The compiled (numba) tier: its kernels against onnxruntime on both tiers, its results
deterministic, and how it is chosen (ENABLE_JIT, AIOINFER_JIT, numba missing)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import aioinfer
from aioinfer.plugins.numpy.kernels import jit, parallel

from .passes._util import check, model, ops, plan

pytestmark = pytest.mark.usefixtures("tier")
needs_numba = pytest.mark.skipif(not jit.installed(), reason="numba is not installed")


def rand(*shape: int, scale: float = 1.0, dtype=np.float32) -> np.ndarray:
    rng = np.random.default_rng(sum(shape) + len(shape))
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _act_nodes(act: str, src: str, out: str, inits: dict) -> list:
    if act == "Relu":
        return [helper.make_node("Relu", [src], [out])]
    if act == "LeakyRelu":
        return [helper.make_node("LeakyRelu", [src], [out], alpha=0.1)]
    if act == "Clip":
        inits["lo"], inits["hi"] = np.float32(0.0), np.float32(6.0)
        return [helper.make_node("Clip", [src, "lo", "hi"], [out])]
    return [helper.make_node("Identity", [src], [out])]


DEPTHWISE = {  # x shape, kernel, multiplier, attrs
    "3x3": ((1, 8, 10, 9), 3, 1, dict(pads=[1, 1, 1, 1])),
    "3x3_stride2": ((2, 6, 11, 10), 3, 1, dict(pads=[1, 1, 1, 1], strides=[2, 2])),
    "3x3_stride2_unpadded": ((1, 4, 9, 9), 3, 1, dict(strides=[2, 2])),
    "asymmetric_pads": ((1, 5, 7, 8), 3, 1, dict(pads=[0, 1, 2, 0])),
    "5x5_same_upper": ((1, 6, 9, 7), 5, 1, dict(auto_pad="SAME_UPPER")),
    "5x5_stride2_same_lower": ((1, 3, 12, 13), 5, 1, dict(auto_pad="SAME_LOWER",
                                                          strides=[2, 2])),
    "multiplier": ((1, 4, 6, 6), 3, 2, dict(pads=[1, 1, 1, 1])),
    "1x7": ((1, 4, 8, 12), (1, 7), 1, dict(pads=[0, 3, 0, 3])),
    "tiny": ((1, 3, 2, 2), 3, 1, dict(pads=[1, 1, 1, 1])),
}


@pytest.mark.parametrize("act", ["", "Relu", "Clip", "LeakyRelu"])
@pytest.mark.parametrize("case", sorted(DEPTHWISE))
def test_depthwise_conv_with_epilogue(case: str, act: str) -> None:
    xs, k, mult, attrs = DEPTHWISE[case]
    kh, kw = (k, k) if isinstance(k, int) else k
    c = xs[1]
    x, w, b = rand(*xs), rand(c * mult, 1, kh, kw, scale=0.3), rand(c * mult)
    inits = {"w": w, "b": b}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=c, **attrs),
             *_act_nodes(act, "c", "y", inits)]
    p = check(model(nodes, {"x": x}, ["y"], inits), {"x": x}, rtol=1e-5, atol=1e-5)
    assert ops(p)[0] == "FusedConv" and len([o for o in ops(p) if o != "Identity"]) == 1


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_conv_with_residual(stride: int) -> None:
    x, w, b = rand(2, 8, 9, 9), rand(8, 1, 3, 3), rand(8)
    out = (9 + 2 - 3) // stride + 1
    r = rand(2, 8, out, out)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=8, pads=[1] * 4,
                              strides=[stride] * 2),
             helper.make_node("Add", ["c", "r"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    inputs = {"x": x, "r": r}
    p = check(model(nodes, inputs, ["y"], {"w": w, "b": b}), inputs)
    assert ops(p) == ["FusedConv"]


def test_depthwise_conv_without_bias_in_float64() -> None:
    x, w = rand(1, 5, 7, 7, dtype=np.float64), rand(5, 1, 3, 3, dtype=np.float64)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], group=5, pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["y"])]
    m = model(nodes, {"x": x}, ["y"], {"w": w})  # onnxruntime has no float64 Conv
    got, want = plan(m).run([x])[0], plan(m, optimize=False).run([x])[0]
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_shuffled_depthwise_conv() -> None:
    """ShuffleNet: Reshape/Transpose/Reshape then a depthwise conv, the shuffle absorbed."""
    g, c = 3, 12
    x, w, b = rand(1, c, 8, 8), rand(c, 1, 3, 3), rand(c)
    inits = {"w": w, "b": b, "s5": np.array([1, g, c // g, 8, 8], np.int64),
             "s4": np.array([1, c, 8, 8], np.int64)}
    nodes = [helper.make_node("Reshape", ["x", "s5"], ["r5"]),
             helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t5", "s4"], ["sh"]),
             helper.make_node("Conv", ["sh", "w", "b"], ["y"], group=c, pads=[1] * 4,
                              strides=[2, 2])]
    p = check(model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert ops(p) == ["FusedConv"] and p.steps[0].fn.keywords["shuffle"]


@pytest.mark.parametrize("act", ["", "Relu", "Clip", "LeakyRelu"])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("kernel,group", [(1, 1), (1, 3), (3, 1)])
def test_gemm_conv_epilogue(kernel: int, group: int, residual: bool, act: str) -> None:
    x, w, b = rand(2, 6, 7, 7), rand(12, 6 // group, kernel, kernel, scale=0.3), rand(12)
    inits = {"w": w, "b": b}
    pad = kernel // 2
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=group, pads=[pad] * 4)]
    inputs = {"x": x}
    last = "c"
    if residual:
        inputs["r"] = rand(2, 12, 7, 7)
        nodes.append(helper.make_node("Add", ["c", "r"], ["s"]))
        last = "s"
    nodes += _act_nodes(act, last, "y", inits)
    check(model(nodes, inputs, ["y"], inits), inputs)


@needs_numba
@pytest.mark.parametrize("act,residual,bias", [("Relu", False, True), ("Clip", True, True),
                                               ("", False, False), ("LeakyRelu", True, False)])
@pytest.mark.parametrize("group", [1, 4])
def test_prepared_pointwise_conv_is_the_generic_compiled_path(group: int, act: str,
                                                              residual: bool, bias: bool
                                                              ) -> None:
    """The per-step prepared 1x1 path gives the generic compiled path's bytes, on the first
    and later calls and for a second input shape; inputs it does not take fall through."""
    from aioinfer.plugins.numpy.kernels import fused
    from aioinfer.plugins.numpy.kernels.jit import conv as jconv

    kw = dict(group=group, kernel_shape=[1, 1], activation=act, activation_alpha=0.1,
              clip_min=0.0, clip_max=6.0)
    steps: dict = {}
    w = rand(16, 8 // group, 1, 1, scale=0.3)
    b = rand(16) if bias else None
    for shape in [(1, 8, 5, 6), (1, 8, 5, 6), (3, 8, 4, 4)]:
        x = rand(*shape)
        z = rand(shape[0], 16, *shape[2:]) if residual else None
        got = jconv.fused_conv(x, w, b, z, **kw, _steps=steps)
        want = fused.fused_conv(x, w, b, z, **kw, epilogue=jconv.Epilogue)
        assert got.shape == want.shape and np.array_equal(got, want)
    assert steps  # prepared and kept
    x = rand(1, 8, 6, 10)[..., ::2]  # not contiguous: the generic path
    np.testing.assert_array_equal(jconv.fused_conv(x, w, b, None, **kw, _steps=steps),
                                  fused.fused_conv(x, w, b, None, **kw,
                                                   epilogue=jconv.Epilogue))


@needs_numba
@pytest.mark.parametrize("kernel,stride,pads,act,residual", [
    (3, 2, [1, 1, 1, 1], "Clip", False), (3, 1, [1, 1, 1, 1], "Relu", True),
    (7, 2, [3, 3, 3, 3], "", False), (3, 3, [0, 1, 2, 0], "LeakyRelu", True),
    (5, 2, [2, 1, 0, 2], "Relu", False)])
def test_windowed_conv_from_im2col_is_the_generic_compiled_path(
        kernel: int, stride: int, pads: list, act: str, residual: bool) -> None:
    """A single image's windowed conv gathered by the compiled im2col (no padded copy) gives
    the generic compiled path's bytes, odd strides, asymmetric pads and edges included."""
    from aioinfer.plugins.numpy.kernels import fused
    from aioinfer.plugins.numpy.kernels.jit import conv as jconv

    kw = dict(kernel_shape=[kernel, kernel], strides=[stride, stride], pads=pads,
              activation=act, activation_alpha=0.1, clip_min=0.0, clip_max=6.0)
    x, w, b = rand(1, 3, 23, 21), rand(8, 3, kernel, kernel, scale=0.3), rand(8)
    want = fused.fused_conv(x, w, b, None, **kw, epilogue=jconv.Epilogue)
    z = rand(*want.shape) if residual else None
    if z is not None:
        want = fused.fused_conv(x, w, b, z, **kw, epilogue=jconv.Epilogue)
    steps: dict = {}
    for _ in range(2):
        got = jconv.fused_conv(x, w, b, z, **kw, _steps=steps)
        assert got.shape == want.shape and np.array_equal(got, want)
    assert any(isinstance(e[2], jconv._Windowed) for e in steps.values())


def test_conv_into_a_concat_buffer() -> None:
    """A depthwise conv writing its channels of a Concat's buffer (concat_in_place)."""
    x, w, b = rand(1, 4, 6, 6), rand(4, 1, 3, 3), rand(4)
    w2, b2 = rand(3, 4, 1, 1), rand(3)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c1"], group=4, pads=[1] * 4),
             helper.make_node("Conv", ["x", "w2", "b2"], ["c2"]),
             helper.make_node("Concat", ["c1", "c2"], ["y"], axis=1)]
    check(model(nodes, {"x": x}, ["y"], {"w": w, "b": b, "w2": w2, "b2": b2}), {"x": x})


def _mobile_block() -> tuple:
    x = rand(1, 16, 14, 14)
    inits = {"w1": rand(48, 16, 1, 1, scale=0.3), "b1": rand(48), "w2": rand(48, 1, 3, 3),
             "b2": rand(48), "w3": rand(16, 48, 1, 1, scale=0.2), "b3": rand(16),
             "lo": np.float32(0), "hi": np.float32(6)}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["e"]),
             helper.make_node("Clip", ["e", "lo", "hi"], ["e6"]),
             helper.make_node("Conv", ["e6", "w2", "b2"], ["d"], group=48, pads=[1] * 4),
             helper.make_node("Clip", ["d", "lo", "hi"], ["d6"]),
             helper.make_node("Conv", ["d6", "w3", "b3"], ["p"]),
             helper.make_node("Add", ["x", "p"], ["y"])]
    return model(nodes, {"x": x}, ["y"], inits), {"x": x}


def test_inverted_residual_block_is_deterministic() -> None:
    """One plan gives bit-identical results run after run, with 1 or 2 intra-op threads."""
    m, inputs = _mobile_block()
    p = check(m, inputs)
    first = p.run(list(inputs.values()))[0]
    try:
        for threads in (1, 2, 1, 2):
            parallel.set_intra_threads(threads)
            assert np.array_equal(p.run(list(inputs.values()))[0], first)
    finally:
        parallel.set_intra_threads(1)


def test_env_turns_the_tier_off(monkeypatch: pytest.MonkeyPatch) -> None:
    m, _ = _mobile_block()
    monkeypatch.setenv(jit.ENV, "0")
    assert plan(m).jit_steps == 0
    assert not jit.env_allows()


@needs_numba
def test_variants_keep_the_steps_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    m, _ = _mobile_block()
    monkeypatch.setenv(jit.ENV, "1")
    p = plan(m)
    assert p.jit_steps == 3
    assert all(jit.kernel_name(s.fn).startswith(jit.__name__) for s in p.steps)
    assert p.steps[1].fn.keywords["group"] == 48


@needs_numba
@pytest.mark.parametrize("enable", [True, False])
def test_enable_jit_property_is_chosen_per_compiled_model(enable: bool,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv(jit.ENV, "1")
    m, inputs = _mobile_block()
    del m.graph.output[:]  # typed, for the Core's model checks
    m.graph.output.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 14, 14]))
    compiled = aioinfer.Core().compile_model(m, "NUMPY", {jit.PROPERTY: enable})
    assert compiled.get_property(jit.PROPERTY) is enable
    assert (compiled.plan.jit_steps > 0) is enable
    got = compiled.create_infer_request().infer(inputs)
    want = plan(m).run(list(inputs.values()))[0]
    np.testing.assert_allclose(np.asarray(got[0]), want, rtol=1e-5, atol=1e-5)


def test_numba_that_fails_to_load_leaves_the_numpy_kernels(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setenv(jit.ENV, "1")
    monkeypatch.setattr(jit, "_modules", {})
    monkeypatch.setattr(jit, "_failure", [])
    monkeypatch.setitem(jit.VARIANTS, "aioinfer.plugins.numpy.kernels.fused.fused_conv",
                        ("no_such_module", "fused_conv"))
    m, inputs = _mobile_block()
    with pytest.warns(RuntimeWarning, match="compiled .* tier is off"):
        p = plan(m)
    assert p.jit_steps == 0
    assert jit.status()["failure"]
    check(m, inputs)


@needs_numba
def test_kernel_cache_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from aioinfer.plugins.numpy.kernels.jit import _numba

    monkeypatch.setattr(_numba.config, "CACHE_DIR", "")
    monkeypatch.setenv("AIOINFER_CACHE_DIR", str(tmp_path))
    assert _numba.cache_dir() == tmp_path / "numba"
    monkeypatch.delenv("AIOINFER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _numba.cache_dir() == tmp_path / "xdg" / "aioinfer" / "numba"
    from aioinfer.plugins.numpy.kernels.jit import conv

    locator = _numba._Locator.from_function(conv.depthwise2d.py_func, conv.__file__)
    assert locator is not None and str(tmp_path / "xdg") in locator.get_cache_path()
    assert _numba._Locator.from_function(rand, __file__) is None  # not one of our kernels
    # and numba uses it (its internals: a numba that moves them must fail here, loudly)
    assert isinstance(conv.depthwise2d._cache._impl._locator, _numba._Locator)


# --- transformer kernels ------------------------------------------------------------------


@pytest.mark.parametrize("gelu", ["erf", "tanh"])
@pytest.mark.parametrize("residual", [False, True])
def test_matmul_bias_gelu_epilogue(gelu: str, residual: bool) -> None:
    """MatMul + Add(bias) [+ Add(residual)] + a written-out GELU: one FusedMatMul."""
    from aioinfer.models import _layers
    from aioinfer.models._graph import GraphBuilder

    g = GraphBuilder("t", 0)
    x = g.input("x", TensorProto.FLOAT, [2, 5, 16], [2, 5, 16])
    h = _layers.linear(g, x, "fc", 16, 24)
    if residual:
        h = g.op("Add", h, g.input("r", TensorProto.FLOAT, [2, 5, 24], [2, 5, 24]))
    g.output(_layers.gelu(g, h, gelu), "y", TensorProto.FLOAT, [2, 5, 24])
    m = g.build(17)
    inputs = {"x": rand(2, 5, 16, scale=3.0)}
    if residual:
        inputs["r"] = rand(2, 5, 24)
    p = check(m, inputs, rtol=1e-5, atol=1e-5)
    assert [o for o in ops(p) if o != "Identity"] == ["FusedMatMul"]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_op(approximate: str) -> None:
    x = rand(3, 7, 33, scale=4.0)
    x.reshape(-1)[:4] = [0.0, -20.0, 20.0, 1e-5]
    nodes = [helper.make_node("Gelu", ["x"], ["y"], approximate=approximate)]
    check(model(nodes, {"x": x}, ["y"], opset=20), {"x": x}, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("act", ["", "Relu"])
@pytest.mark.parametrize("bias", ["row", "matrix", "none"])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_gemm_epilogue(act: str, bias: str, alpha: float) -> None:
    a, b = rand(6, 10), rand(12, 10)
    inits = {"b": b}
    ins = ["a", "b"]
    if bias != "none":
        inits["c"] = rand(12) if bias == "row" else rand(6, 12)
        ins.append("c")
    nodes = [helper.make_node("Gemm", ins, ["g"], transB=1, alpha=alpha),
             *_act_nodes(act, "g", "y", inits)]
    check(model(nodes, {"a": a}, ["y"], inits), {"a": a})


@pytest.mark.parametrize("shape", [(2, 5, 16), (1, 1, 7), (3, 13)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_normalization(shape: tuple, affine: bool) -> None:
    x = rand(*shape, scale=2.0) + 1.0
    n = shape[-1]
    inits = {"s": rand(n) + 1.0, "b": rand(n)} if affine else {"s": np.ones(n, np.float32)}
    nodes = [helper.make_node("LayerNormalization", ["x", *inits], ["y"], epsilon=1e-5)]
    check(model(nodes, {"x": x}, ["y"], inits, opset=17), {"x": x})


def test_written_out_layer_norm() -> None:
    from aioinfer.models import _layers
    from aioinfer.models._graph import GraphBuilder

    g = GraphBuilder("t", 0)
    x = g.input("x", TensorProto.FLOAT, [1, 9, 32], [1, 9, 32])
    g.output(_layers.layer_norm(g, x, "ln", 32, "decomposed", 17, eps=1e-12), "y",
             TensorProto.FLOAT, [1, 9, 32])
    m = g.build(17)
    p = check(m, {"x": rand(1, 9, 32, scale=3.0)})
    assert "LayerNorm" in ops(p)


@pytest.mark.parametrize("opset,axis,shape", [(13, -1, (2, 3, 17, 17)), (13, 1, (2, 5, 4)),
                                              (11, 1, (2, 3, 4)), (11, -1, (3, 1, 200)),
                                              (13, -1, (4, 1))])
def test_softmax(opset: int, axis: int, shape: tuple) -> None:
    x = rand(*shape, scale=5.0)
    nodes = [helper.make_node("Softmax", ["x"], ["y"], axis=axis)]
    check(model(nodes, {"x": x}, ["y"], opset=opset), {"x": x}, rtol=1e-5, atol=1e-6)


def test_softmax_of_masked_rows() -> None:
    """-inf entries (a causal mask) give 0, a row all of -inf NaN, a NaN row NaN: as NumPy."""
    x = rand(4, 9, scale=3.0)
    x[0, 5:] = -np.inf
    x[1, :] = -np.inf
    x[2, 3] = np.nan
    x[3, 0] = np.finfo(np.float32).min
    nodes = [helper.make_node("Softmax", ["x"], ["y"], axis=-1)]
    m = model(nodes, {"x": x}, ["y"], opset=13)
    got, want = plan(m).run([x])[0], plan(m, optimize=False).run([x])[0]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=0)
    assert (got[0, 5:] == 0).all() and np.isnan(got[1]).all() and np.isnan(got[2]).all()


@pytest.mark.parametrize("act", ["", "Relu", "Clip", "LeakyRelu"])
@pytest.mark.parametrize("batch,size,pads,residual", [
    (1, (14, 14), [1, 1, 1, 1], True),      # tile rows cut
    (1, (15, 17), [1, 1, 1, 1], False),     # odd sizes: a cropped last tile row and column
    (2, (16, 18), [1, 1, 1, 1], True),      # a batch: channels cut
    (1, (16, 16), [0, 0, 0, 0], False),     # unpadded: 14x14 output
    (1, (15, 15), [1, 0, 0, 1], True),      # asymmetric pads
])
def test_winograd_conv(batch: int, size: tuple, pads: list, residual: bool, act: str) -> None:
    x = rand(batch, 64, *size)
    w, b = rand(64, 64, 3, 3, scale=0.05), rand(64)
    inits = {"w": w, "b": b}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=pads)]
    inputs = {"x": x}
    last = "c"
    if residual:
        out = (size[0] + pads[0] + pads[2] - 2, size[1] + pads[1] + pads[3] - 2)
        inputs["r"] = rand(batch, 64, *out)
        nodes.append(helper.make_node("Add", ["c", "r"], ["s"]))
        last = "s"
    nodes += _act_nodes(act, last, "y", inits)
    p = check(model(nodes, inputs, ["y"], inits), inputs, rtol=1e-4, atol=1e-4)
    assert ops(p)[0] == "WinogradConv"


@needs_numba
def test_winograd_transforms_are_numpys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled transforms make NumPy's operations in NumPy's order: identical bits."""
    from aioinfer.plugins.numpy.kernels import winograd
    from aioinfer.plugins.numpy.kernels.jit import winograd as jit_winograd

    x, w, b, z = rand(1, 64, 15, 13), rand(64, 64, 3, 3, scale=0.05), rand(64), rand(1, 64, 15, 13)
    u = winograd.winograd_weights(w)
    for kw in ({}, {"activation": "Relu"}):
        want = winograd.winograd_conv(x, u, b, z, **kw)
        assert np.array_equal(jit_winograd.winograd_conv(x, u, b, z, **kw), want)


POOLS = [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[2, 3], strides=[1, 1], pads=[0, 1, 1, 0])),
    ("MaxPool", dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[2, 2])),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 1])),  # unequal strides: NumPy's
    ("MaxPool", dict(kernel_shape=[3, 3], dilations=[2, 2])),  # dilated: NumPy's
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[5, 5], strides=[3, 3], pads=[2, 2, 2, 2])),
]


@pytest.mark.parametrize("op,attrs", POOLS)
@pytest.mark.parametrize("batch", [1, 2])
def test_pool(op: str, attrs: dict, batch: int) -> None:
    x = rand(batch, 5, 11, 9)
    check(model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": x}, ["y"]), {"x": x})


def test_max_pool_propagates_nan() -> None:
    x = rand(1, 2, 6, 6)
    x[0, 0, 2, 3] = np.nan
    m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[1, 1])],
              {"x": x}, ["y"])
    got, want = plan(m).run([x])[0], plan(m, optimize=False).run([x])[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got).sum() == 9
    np.testing.assert_array_equal(got[~np.isnan(got)], want[~np.isnan(want)])


@pytest.mark.parametrize("act", ["", "Relu", "Clip"])
def test_channel_affine(act: str) -> None:
    """A BatchNormalization with no conv before it becomes a ChannelAffine."""
    x = rand(2, 6, 5, 7)
    inits = {"s": rand(6) + 2.0, "b": rand(6), "m": rand(6), "v": np.abs(rand(6)) + 0.5}
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["n"]),
             *_act_nodes(act, "n", "y", inits)]
    p = check(model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert ops(p)[0] == "ChannelAffine"


def _attention(mask: str, heads: int = 2, t: int = 5, s: int = 7) -> tuple:
    """Div(Q K^T, sqrt d) [-> Where(mask)] -> Softmax, as the builders emit it."""
    inputs = {"q": rand(1, heads, t, 8), "k": rand(1, heads, 8, s)}
    inits = {"d": np.array(np.sqrt(8.0), np.float32),
             "fill": np.array(np.finfo(np.float32).min, np.float32)}
    nodes = [helper.make_node("MatMul", ["q", "k"], ["qk"]),
             helper.make_node("Div", ["qk", "d"], ["sc"])]
    last = "sc"
    if mask == "padding":  # BERT: the fill where the key is padding
        inputs["pad"] = np.zeros((1, 1, 1, s), bool)
        inputs["pad"][..., -2:] = True
        nodes.append(helper.make_node("Where", ["pad", "fill", "sc"], ["ms"]))
        last = "ms"
    elif mask == "causal":  # GPT-2: keep where the causal mask is set
        inits["causal"] = np.tril(np.ones((t, s), bool), k=s - t)[None, None]
        nodes.append(helper.make_node("Where", ["causal", "sc", "fill"], ["ms"]))
        last = "ms"
    nodes.append(helper.make_node("Softmax", [last], ["y"], axis=-1))
    return model(nodes, inputs, ["y"], inits), inputs


@pytest.mark.parametrize("mask", ["none", "padding", "causal"])
def test_scaled_masked_softmax_is_one_step(mask: str, tier: str) -> None:
    m, inputs = _attention(mask)
    p = check(m, inputs, rtol=1e-5, atol=1e-6)
    fused = "MaskedSoftmax" in ops(p)
    assert fused == (tier == "jit")
    if fused:
        assert not {"Div", "MaskedFill", "Softmax"} & set(ops(p))


def test_fused_softmax_equals_the_unfused_compiled_steps(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    m, inputs = _attention("causal", heads=3, t=9, s=40)
    p = plan(m)
    got = p.run(list(inputs.values()))[0]
    monkeypatch.setattr(jit, "_CHAIN_ENDS", frozenset())
    want = plan(m).run(list(inputs.values()))[0]
    np.testing.assert_array_equal(got, want)


def test_softmax_chain_read_twice_is_not_fused() -> None:
    m, inputs = _attention("padding")
    m.graph.output.append(helper.make_value_info("sc", onnx.TypeProto()))  # Div's output
    p = plan(m)
    assert "MaskedSoftmax" not in ops(p)
    ours = p.run(list(inputs.values()))
    assert len(ours) == 2


def _signatures() -> dict[str, list]:
    from numba.core.registry import CPUDispatcher

    found = {}
    for name, module in list(jit._modules.items()):
        for attr, value in vars(module).items():
            if isinstance(value, CPUDispatcher):
                found[f"{name}.{attr}"] = list(value.signatures)
    return found


@needs_numba
def test_runs_compile_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every kernel is compiled (or loaded) when the model is: read-only constants and
    writeable intermediates reach the kernels as one type (``_numba.ro``)."""
    monkeypatch.setenv(jit.ENV, "1")
    cases = [_mobile_block(), _attention("padding")]
    x = rand(1, 64, 14, 14)
    w = rand(64, 64, 3, 3, scale=0.05)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[3, 3], strides=[2, 2]),
             helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[2, 2])]
    cases.append((model(nodes, {"x": x}, ["y"], {"w": w, "b": rand(64)}), {"x": x}))
    plans = [(plan(m), inputs) for m, inputs in cases]
    before = _signatures()
    for p, inputs in plans:
        p.run(list(inputs.values()))
    after = _signatures()
    assert after == before
    # and whatever ran before in this process: no kernel has two signatures that differ only
    # in which arrays are read-only (one of them was compiled by a run)
    from numba.core import types

    for name, signatures in after.items():
        kinds = [tuple((t.dtype, t.ndim, t.layout) if isinstance(t, types.Array) else t
                       for t in sig) for sig in signatures]
        assert len(kinds) == len(set(kinds)), f"{name}: {signatures}"
