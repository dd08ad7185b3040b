"""NUMPY long-tail kernels (signal, random, ml, text) beyond what the ONNX node cases cover."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from ._ort import assert_matches_ort, make_model, run_ort, run_ours

pytestmark = pytest.mark.usefixtures("tier")  # NumPy's kernels and the compiled tier

ML = {"ai.onnx.ml": 3}
RNG = np.random.default_rng(0)


def _node(op: str, inputs, outputs, **attrs):
    domain = attrs.pop("domain", "")
    return helper.make_node(op, list(inputs), list(outputs), domain=domain, **attrs)


def _ml(op: str, inputs: dict, outputs=("y",), **attrs):
    node = _node(op, inputs, outputs, domain="ai.onnx.ml", **attrs)
    return make_model([node], inputs, outputs, opset=17, extra_opsets=ML)


@pytest.mark.parametrize("onesided", [0, 1])
@pytest.mark.parametrize("inverse", [0, 1])
def test_dft_matches_numpy_on_an_inner_axis(onesided, inverse):
    x = RNG.standard_normal((2, 8, 3, 2)).astype(np.float32)
    if onesided and not inverse:
        x = x[..., :1].copy()
    model = make_model([_node("DFT", ["x", "", "axis"], ["y"], inverse=inverse,
                              onesided=onesided)],
                       {"x": x, "axis": np.array(1, np.int64)}, ["y"], opset=20)
    y = run_ours(model, {"x": x, "axis": np.array(1, np.int64)})[0]
    c = x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0]
    if inverse and onesided:
        ref = np.fft.irfft(c, n=2 * (c.shape[1] - 1), axis=1)[..., None]
    elif inverse:
        ref = np.fft.ifft(c, axis=1)
    else:
        ref = np.fft.rfft(c, axis=1) if onesided else np.fft.fft(c, axis=1)
    ref = ref if ref.shape[-1] == 1 and inverse and onesided else np.stack(
        [ref.real, ref.imag], axis=-1)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_random_ops_dtype_shape_and_seeded_reproducibility():
    nodes = [
        _node("RandomUniform", [], ["u"], shape=[3, 4], dtype=11, low=-2.0, high=2.0, seed=1.0),
        _node("RandomNormal", [], ["n"], shape=[5], dtype=10, seed=2.0),
        _node("RandomNormalLike", ["x"], ["nl"]),
        _node("Bernoulli", ["p"], ["b"], dtype=7),
        _node("Multinomial", ["logits"], ["m"], sample_size=1000, seed=3.0),
    ]
    inputs = {"x": np.zeros((2, 3), np.float32), "p": np.array([0.0, 1.0, 1.0], np.float32),
              "logits": np.log(np.array([[0.2, 0.8], [1.0, 1e-9]], np.float32))}
    model = make_model(nodes, inputs, ["u", "n", "nl", "b", "m"], opset=17)
    u, n, nl, b, m = run_ours(model, inputs)
    assert u.dtype == np.float64 and u.shape == (3, 4) and (u >= -2).all() and (u < 2).all()
    assert n.dtype == np.float16 and n.shape == (5,)
    assert nl.dtype == np.float32 and nl.shape == (2, 3)
    assert b.dtype == np.int64 and b.tolist() == [0, 1, 1]
    assert m.dtype == np.int32 and m.shape == (2, 1000)
    assert 0.7 < m[0].mean() < 0.9 and (m[1] == 0).all()
    again = run_ours(model, inputs)
    np.testing.assert_array_equal(again[0], u)  # seeded: the same draw each run


def test_tfidf_with_skips_and_weights_matches_onnxruntime():
    pool = [2, 3, 5, 4, 5, 6, 7, 8, 6, 7]  # 4 unigrams then 3 bigrams
    node = _node("TfIdfVectorizer", ["x"], ["y"], max_gram_length=2, min_gram_length=1,
                 max_skip_count=2, mode="TFIDF", ngram_counts=[0, 4],
                 ngram_indexes=[6, 0, 5, 1, 4, 2, 3], pool_int64s=pool,
                 weights=[0.5, 1.5, 2.0, 0.25, 3.0, 1.0, 0.75])
    x = RNG.integers(2, 9, size=(4, 12)).astype(np.int64)
    assert_matches_ort(make_model([node], {"x": x}, ["y"], opset=17), {"x": x})


def test_string_ops_unicode_and_case_insensitive_stopwords():
    x = np.array([["Straße", "ÉCOLE", "the", "The"]], dtype=object)
    node = _node("StringNormalizer", ["x"], ["y"], case_change_action="LOWER",
                 stopwords=["THE"])
    y = run_ours(make_model([node], {"x": x}, ["y"], opset=17), {"x": x})[0]
    assert y.shape == (1, 2) and y.tolist() == [["straße", "école"]]


def test_linear_classifier_and_regressor_match_onnxruntime():
    x = RNG.standard_normal((6, 3)).astype(np.float32)
    for transform in ("NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO"):
        multi = _ml("LinearClassifier", {"x": x}, ("y", "z"), post_transform=transform,
                    coefficients=list(np.linspace(-1, 1, 9)), intercepts=[0.1, 0.2, -0.3],
                    classlabels_ints=[1, 5, 7])
        binary = _ml("LinearClassifier", {"x": x}, ("y", "z"), post_transform=transform,
                     coefficients=[0.3, -0.2, 0.5], intercepts=[0.1],
                     classlabels_strings=["a", "b"])
        for model in (multi, binary):
            ours, theirs = run_ours(model, {"x": x}), run_ort(model, {"x": x})
            np.testing.assert_array_equal(ours[0], theirs[0])
            np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)
    reg = _ml("LinearRegressor", {"x": x}, coefficients=[0.5, -1.0, 2.0, 1.0, 0.0, -0.5],
              intercepts=[0.1, 0.2], targets=2)
    assert_matches_ort(reg, {"x": x})


def _tree_attrs(prefix: str, weights: list[tuple[int, int, float]]) -> dict:
    """Two trees over 2 features; ``weights`` = (tree, leaf node id, class/target) entries."""
    attrs = dict(
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2],
        nodes_featureids=[0, 1, 0, 0, 0, 1, 0, 0],
        nodes_modes=["BRANCH_LEQ", "BRANCH_GT", "LEAF", "LEAF", "LEAF",
                     "BRANCH_LT", "LEAF", "LEAF"],
        nodes_values=[0.0, 0.5, 0, 0, 0, -0.25, 0, 0],
        nodes_truenodeids=[1, 2, 0, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[4, 3, 0, 0, 0, 2, 0, 0],
        nodes_missing_value_tracks_true=[1, 0, 0, 0, 0, 0, 0, 0],
    )
    attrs[f"{prefix}_treeids"] = [w[0] for w in weights]
    attrs[f"{prefix}_nodeids"] = [w[1] for w in weights]
    attrs[f"{prefix}_ids"] = [w[2] for w in weights]
    attrs[f"{prefix}_weights"] = [float(i + 1) * (-1) ** i / 4 for i in range(len(weights))]
    return attrs


def test_tree_ensembles_match_onnxruntime():
    x = RNG.standard_normal((16, 2)).astype(np.float32)
    x[0, 0] = np.nan
    leaves = [(0, 2), (0, 3), (0, 4), (1, 1), (1, 2)]
    entries = [(t, n, k) for t, n in leaves for k in range(3)]
    for agg in ("SUM", "AVERAGE", "MIN", "MAX"):
        reg = _ml("TreeEnsembleRegressor", {"x": x}, n_targets=3, aggregate_function=agg,
                  base_values=[0.5, 0.0, -1.0], **_tree_attrs("target", entries))
        assert_matches_ort(reg, {"x": x})
    for labels in ([3, 5, 9], ["a", "b"]):
        k = len(labels)
        cls_entries = [(t, n, c) for t, n in leaves for c in range(k)]
        key = "classlabels_strings" if isinstance(labels[0], str) else "classlabels_int64s"
        model = _ml("TreeEnsembleClassifier", {"x": x}, ("y", "z"), post_transform="SOFTMAX",
                    **{key: labels}, **_tree_attrs("class", cls_entries))
        ours, theirs = run_ours(model, {"x": x}), run_ort(model, {"x": x})
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-5, atol=1e-6)


def test_label_encoder_numeric_keys_and_category_mapper():
    x = np.array([9, 3, 7, 5], np.int64)
    enc = _ml("LabelEncoder", {"x": x}, keys_int64s=[5, 3, 9], values_floats=[1.5, 2.5, 3.5],
              default_float=-1.0)
    assert_matches_ort(enc, {"x": x})
    cat = _ml("CategoryMapper", {"x": x}, cats_int64s=[3, 9], cats_strings=["c", "n"])
    assert run_ours(cat, {"x": x})[0].tolist() == ["n", "c", "_Unused", "_Unused"]


def test_scaler_normalizer_imputer_one_hot_match_onnxruntime():
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    x[1, 2] = np.nan
    assert_matches_ort(_ml("Imputer", {"x": x}, imputed_value_floats=[1.0, 2.0, 3.0],
                           replaced_value_float=float("nan")), {"x": x})
    clean = np.nan_to_num(x)
    assert_matches_ort(_ml("Scaler", {"x": clean}, offset=[1.0, 0.0, -1.0],
                           scale=[2.0, 0.5, 1.0]), {"x": clean})
    for norm in ("MAX", "L1", "L2"):
        assert_matches_ort(_ml("Normalizer", {"x": clean}, norm=norm), {"x": clean})
    words = np.array([["a", "z"], ["c", "b"]], dtype=object)
    assert_matches_ort(_ml("OneHotEncoder", {"x": words}, cats_strings=["a", "b", "c"]),
                       {"x": words})


@pytest.mark.parametrize("pixel_format", ["RGB", "BGR", "Grayscale"])
def test_image_decoder_converts_rgba_and_palette_pngs(pixel_format):
    """Beyond the node cases (all RGB images): an RGBA and a palette PNG decode to 3 channels
    (1 for Grayscale), as the spec's output shapes say, the same pixels Pillow gives."""
    image = pytest.importorskip("PIL.Image")
    import io

    rng = np.random.default_rng(7)
    rgba = image.fromarray(rng.integers(0, 256, (5, 7, 4), dtype=np.uint8), "RGBA")
    for picture in (rgba, rgba.convert("P")):
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        encoded = np.frombuffer(buffer.getvalue(), dtype=np.uint8)
        model = make_model([_node("ImageDecoder", ["x"], ["y"], pixel_format=pixel_format)],
                           {"x": encoded}, ["y"], opset=20)
        (got,) = run_ours(model, {"x": encoded})
        opaque = picture.convert("RGBA")
        if pixel_format == "Grayscale":
            want = np.asarray(opaque.convert("L"))[:, :, None]
        else:
            want = np.asarray(opaque.convert("RGB"))[:, :, ::-1 if pixel_format == "BGR" else 1]
        assert got.dtype == np.uint8 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
