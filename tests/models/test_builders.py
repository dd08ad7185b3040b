"""The built-in model builders: valid ONNX, run by onnxruntime, and matched by aioinfer."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import pytest

import aioinfer
from aioinfer import models
from aioinfer.plugins.numpy.registry import lookup

ort = pytest.importorskip("onnxruntime")

CASES: dict[str, Callable[[], onnx.ModelProto]] = {
    "cnn": lambda: models.cnn(batch=2, image_size=64),
    "cnn-dynamic-batch": lambda: models.cnn(batch="N", image_size=32, widths=(8, 16)),
    "mlp": lambda: models.mlp(batch=8, sizes=(64, 256, 256, 10)),
    "bert": lambda: models.bert_like(batch=2),
    "bert-fused-opset20": lambda: models.bert_like(layer_norm="fused", gelu="fused", opset=20),
    "bert-opset18": lambda: models.bert_like(opset=18, gelu="tanh", seq=16),
    "gpt2": lambda: models.gpt2_like(batch=2, seq=8, past=16),
    "gpt2-no-past": lambda: models.gpt2_like(seq=16, past=0, layer_norm="decomposed"),
    "gpt2-step": lambda: models.gpt2_like(seq=1, past=31),
    "mobilenet_v2": lambda: models.mobilenet_v2(image_size=64, width_mult=0.5),
    "mobilenet_v2-dynamic-batch": lambda: models.mobilenet_v2(batch="N", image_size=32,
                                                              width_mult=0.35, num_classes=10),
    "vit": lambda: models.vit_like(image_size=32, patch=8, hidden=64, heads=4, layers=2),
    "vit-fused-opset20": lambda: models.vit_like(image_size=32, patch=8, hidden=32, heads=2,
                                                 layers=1, layer_norm="fused", gelu="fused",
                                                 opset=20),
    "cnn-qdq": lambda: models.qdq(models.cnn(image_size=64)),
    "bert-qdq": lambda: models.qdq(models.bert_like(seq=16)),
}
_built: dict[str, onnx.ModelProto] = {}


def build(case: str) -> onnx.ModelProto:
    if case not in _built:
        _built[case] = CASES[case]()
    return _built[case]


def onnxruntime_run(model: onnx.ModelProto, feeds: dict, optimize: bool = False) -> list:
    """onnxruntime as the oracle: with graph optimizations off it runs the graph as written
    (with them on, QDQ graphs are rewritten to integer kernels with other rounding)."""
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def assert_close(actual: np.ndarray, expected: np.ndarray, name: str) -> None:
    """Within 1e-4 relative, with an absolute floor of 1e-4 of the tensor's largest value."""
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{name}: dtype {actual.dtype} != {expected.dtype}"
    scale = float(np.abs(expected).max()) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * max(scale, 1e-6),
                               err_msg=name)


def missing_ops(model: onnx.ModelProto) -> list[str]:
    opset = {o.domain: o.version for o in model.opset_import}[""]
    return sorted({n.op_type for n in model.graph.node if lookup(n.op_type, opset) is None})


@pytest.mark.parametrize("case", CASES)
def test_builder_passes_full_check(case: str) -> None:
    model = build(case)
    onnx.checker.check_model(model, full_check=True)
    assert model.producer_name == "aioinfer.models"
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    assert len(inferred.graph.value_info) > 0


@pytest.mark.parametrize("case", CASES)
def test_onnxruntime_runs_with_default_optimizations(case: str) -> None:
    model = build(case)
    feeds = models.example_inputs(model)
    outputs = onnxruntime_run(model, feeds, optimize=True)
    assert [o.name for o in model.graph.output] and len(outputs) == len(model.graph.output)
    for out in outputs:
        assert np.isfinite(out).all()


@pytest.mark.parametrize("case", CASES)
def test_numpy_device_matches_onnxruntime(case: str) -> None:
    model = build(case)
    missing = missing_ops(model)
    if missing:
        pytest.skip(f"NUMPY kernels not written yet for: {', '.join(missing)}")
    feeds = models.example_inputs(model, seed=1)
    expected = onnxruntime_run(model, feeds)
    compiled = aioinfer.Core().compile_model(model, "NUMPY")
    results = compiled.create_infer_request().infer(feeds)
    for port, want in zip(compiled.outputs, expected, strict=True):
        assert_close(np.asarray(results[port.name]), want, f"{case}:{port.name}")


@pytest.mark.parametrize("case", ["cnn", "mlp", "bert", "gpt2"])
def test_template_device_matches_onnxruntime(case: str) -> None:
    core = aioinfer.Core()
    if "TEMPLATE" not in core.available_devices:
        pytest.skip("the TEMPLATE plugin is not available in this tree yet")
    model = build(case)
    feeds = models.example_inputs(model, seed=2)
    expected = onnxruntime_run(model, feeds)
    results = core.compile_model(model, "TEMPLATE").create_infer_request().infer(feeds)
    for out, want in zip(model.graph.output, expected, strict=True):
        assert_close(np.asarray(results[out.name]), want, f"{case}:{out.name}")


def test_builders_are_deterministic_per_seed() -> None:
    a = models.cnn(image_size=32, seed=7).SerializeToString()
    assert a == models.cnn(image_size=32, seed=7).SerializeToString()
    assert a != models.cnn(image_size=32, seed=8).SerializeToString()


def test_cnn_outputs_probabilities() -> None:
    model = build("cnn")
    probs = onnxruntime_run(model, models.example_inputs(model))[0]
    assert probs.shape == (2, 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    ops = {n.op_type for n in model.graph.node}
    assert {"Conv", "BatchNormalization", "Relu", "Add", "MaxPool", "GlobalAveragePool",
            "Gemm", "Softmax"} <= ops


def test_bert_attention_mask_hides_padding() -> None:
    model = build("bert")
    feeds = models.example_inputs(model)
    feeds["attention_mask"][:] = 1
    feeds["attention_mask"][:, -4:] = 0
    before = onnxruntime_run(model, feeds)[0]
    feeds["input_ids"][:, -4:] = (feeds["input_ids"][:, -4:] + 1) % 1000
    after = onnxruntime_run(model, feeds)[0]
    np.testing.assert_allclose(after[:, :-4], before[:, :-4], rtol=1e-5, atol=1e-5)
    assert np.abs(after[:, -4:] - before[:, -4:]).max() > 1e-2


def test_bert_variants_emit_exporter_ops() -> None:
    decomposed = {n.op_type for n in build("bert").graph.node}
    assert {"ReduceMean", "Sub", "Pow", "Sqrt", "Div", "Erf", "Where", "Softmax", "Shape",
            "Gather", "Concat", "Reshape", "Transpose", "MatMul"} <= decomposed
    assert "LayerNormalization" not in decomposed
    fused = {n.op_type for n in build("bert-fused-opset20").graph.node}
    assert {"LayerNormalization", "Gelu"} <= fused and "Erf" not in fused
    with pytest.raises(ValueError, match="opset >= 20"):
        models.bert_like(gelu="fused", opset=17)


def test_gpt2_kv_cache_matches_full_sequence() -> None:
    """Logits of tokens fed one step later with the cache equal those of one full pass."""
    model = models.gpt2_like(seq=10, past=0)
    full = models.example_inputs(model)
    ids = full["input_ids"]
    logits = onnxruntime_run(model, full)[0]
    first = {**full, "input_ids": ids[:, :6]}
    out = onnxruntime_run(model, first)
    step = {"input_ids": ids[:, 6:]}
    for k in range(2):
        step[f"past_key_{k}"], step[f"past_value_{k}"] = out[1 + 2 * k], out[2 + 2 * k]
    cached = onnxruntime_run(model, step)
    np.testing.assert_allclose(cached[0], logits[:, 6:], rtol=1e-4, atol=1e-4)
    assert cached[1].shape == (1, 4, 10, 32)


def test_qdq_quantizes_weights_and_activations() -> None:
    model = build("cnn-qdq")
    ops = [n.op_type for n in model.graph.node]
    convs = ops.count("Conv")
    assert ops.count("QuantizeLinear") >= 1 and ops.count("DequantizeLinear") >= 2 * convs
    int8 = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= convs
    float_model = models.cnn(image_size=64)
    feeds = models.example_inputs(float_model)
    want = onnxruntime_run(float_model, feeds)[0]
    got = onnxruntime_run(model, feeds)[0]
    # Eight-bit weights and activations: close to the float model, but not equal to it.
    assert 0 < np.abs(got - want).max() < 0.25 * np.abs(want).max()
    assert (got.argmax(1) == want.argmax(1)).all()


def test_registry() -> None:
    assert {"cnn", "mlp", "bert", "gpt2"} <= set(models.MODELS)
    assert models.get("mlp", sizes=(8, 4), batch=2).graph.output[0].name == "logits"
    with pytest.raises(KeyError, match="built-in models: .*cnn"):
        models.get("resnet9000")


def test_example_inputs_need_a_shape_for_dynamic_dims() -> None:
    model = onnx.ModelProto()
    model.CopyFrom(build("cnn-dynamic-batch"))
    del model.metadata_props[:]
    with pytest.raises(ValueError, match="'input' has a dynamic shape"):
        models.example_inputs(model)
    assert models.example_inputs(model, shapes={"input": [3, 3, 32, 32]})["input"].shape[0] == 3


def test_mobilenet_v2_has_torchvision_structure() -> None:
    model = models.mobilenet_v2()
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    depthwise = [n for n in convs if next(a.i for a in n.attribute if a.name == "group") > 1]
    assert len(convs) == 52 and len(depthwise) == 17
    assert sum(n.op_type == "Add" for n in model.graph.node) == 10  # the residual blocks
    assert {n.op_type for n in model.graph.node} == {"Conv", "Clip", "Add", "GlobalAveragePool",
                                                     "Flatten", "Gemm", "Identity"}
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    assert 3.4e6 < params < 3.6e6  # torchvision's mobilenet_v2: 3.50M


def test_vit_tokens_and_heads() -> None:
    model = build("vit")
    ops = {n.op_type for n in model.graph.node}
    assert {"Conv", "Reshape", "Transpose", "Expand", "Concat", "Softmax", "Erf", "Gather",
            "Gemm"} <= ops and "Where" not in ops
    feeds = models.example_inputs(model)
    assert feeds["pixel_values"].shape == (1, 3, 32, 32)
    with pytest.raises(ValueError, match="multiple of patch"):
        models.vit_like(image_size=30, patch=8)
