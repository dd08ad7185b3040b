"""NUMPY's export_model / import_model: a compiled plan as data, bit-identical after import,
refused (never run) when truncated, corrupt or crafted to name code."""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np
import onnx
import pytest

import aioinfer
from aioinfer import errors, models
from aioinfer.plugins.numpy import export
from aioinfer.testing.conformance import as_numpy, node_cases

from ..extensions.ops import Swish, swish_model

MODELS = [("cnn", {"image_size": 32, "batch": "N"}), ("mlp", {"sizes": (32, 64, 10)}),
          ("bert", {"hidden": 32, "layers": 1, "heads": 2, "seq": 8}),
          ("gpt2", {"hidden": 32, "layers": 1, "heads": 2, "seq": 8, "past": 4}),
          ("mobilenet_v2", {"image_size": 32}), ("vit", {}), ("cnn-qdq", {"image_size": 32})]


def _outputs(compiled: Any, feeds: Any) -> list[Any]:
    results = compiled(feeds)
    return [results[k] for k in range(len(compiled.outputs))]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(
            _same(x, y) for x, y in zip(a, b, strict=True))
    if a is None or b is None:
        return a is b
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(a.tolist() == b.tolist()) if a.dtype == object else a.tobytes() == b.tobytes()


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "numpy"])
@pytest.mark.parametrize(("name", "kw"), MODELS, ids=[m[0] for m in MODELS])
def test_imported_models_are_bit_identical(name: str, kw: dict[str, Any], jit: bool) -> None:
    core = aioinfer.Core()
    proto = models.get(name, **kw)
    feeds = models.example_inputs(proto)
    compiled = core.compile_model(proto, "NUMPY", {"ENABLE_JIT": jit})
    blob = compiled.export_model()
    imported = core.import_model(blob, "NUMPY")
    assert imported.get_property("ENABLE_JIT") is jit  # the config travels in the blob
    assert [p.name for p in imported.inputs] == [p.name for p in compiled.inputs]
    assert [p.shape for p in imported.outputs] == [p.shape for p in compiled.outputs]
    expected = _outputs(compiled, feeds)
    for got in (_outputs(imported, feeds), _outputs(core.import_model(bytearray(blob), "NUMPY"),
                                                     feeds)):
        assert all(_same(e, g) for e, g in zip(expected, got, strict=True))
    assert imported.export_model() == blob  # an import exports what it was made from


def _subset() -> list[Any]:
    """A fixed sixteenth of the node cases plus every one with a subgraph (If, Loop, Scan): the
    full set (1,878 cases, bit-identical with and without the compiled tier) takes minutes."""
    picked = []
    for index, case in enumerate(node_cases()):
        nested = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                     for n in case.model.graph.node for a in n.attribute)
        if (index % 16 == 0 or nested) and not case.name.startswith("test_bernoulli"):
            picked.append(pytest.param(case, id=case.name))
    return picked


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("case", _subset())
def test_node_cases_round_trip_bit_identical(case: Any) -> None:
    core = aioinfer.Core()
    try:
        compiled = core.compile_model(case.model, "NUMPY")
    except errors.AioInferError:
        pytest.skip("NUMPY does not compile this case (listed in the conformance suite)")
    imported = core.import_model(compiled.export_model(), "NUMPY")
    for inputs, _ in case.data_sets:
        feeds = [as_numpy(v) for v in inputs]
        assert _same(_outputs(compiled, list(feeds)), _outputs(imported, list(feeds)))


def test_dynamic_shapes_compile_new_shapes_from_the_stored_model() -> None:
    core = aioinfer.Core()
    proto = models.get("cnn", image_size=32, batch="N")
    compiled = core.compile_model(proto, "NUMPY")
    imported = core.import_model(compiled.export_model(), "NUMPY")
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32), dtype=np.float32)
        assert _same(_outputs(compiled, [x]), _outputs(imported, [x]))


def test_static_blob_holds_no_graph_and_import_compiles_nothing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    core = aioinfer.Core()
    compiled = core.compile_model(models.get("mlp", sizes=(32, 64, 10)), "NUMPY")
    blob = compiled.export_model()

    def no_compile(*args: Any, **kw: Any) -> Any:
        raise AssertionError("import_model compiled the graph")

    monkeypatch.setattr(export, "compile_graph", no_compile)
    monkeypatch.setattr("aioinfer.plugins.numpy.plugin.compile_graph", no_compile)
    imported = core.import_model(blob, "NUMPY")
    assert len(imported.model.proto.graph.node) == 0  # the interface only
    assert not imported.model.proto.graph.initializer
    feeds = models.example_inputs(compiled.model.proto)
    assert _same(_outputs(compiled, feeds), _outputs(imported, feeds))


def test_config_given_to_import_overrides_the_stored_one() -> None:
    core = aioinfer.Core()
    compiled = core.compile_model(models.get("cnn", image_size=32), "NUMPY",
                                  {"PERFORMANCE_HINT": "THROUGHPUT"})
    imported = core.import_model(compiled.export_model(), "NUMPY",
                                 {"PERFORMANCE_HINT": "LATENCY", "ENABLE_JIT": False})
    assert str(imported.get_property("PERFORMANCE_HINT")) == "LATENCY"
    assert imported.plan.jit_steps == 0
    with pytest.raises(errors.PropertyError):
        core.import_model(compiled.export_model(), "NUMPY", {"NO_SUCH_KEY": 1})


def test_custom_operations_travel_by_name() -> None:
    with_op = aioinfer.Core()
    with_op.add_extension(Swish)
    compiled = with_op.compile_model(swish_model(), "NUMPY")
    blob = compiled.export_model()
    x = np.linspace(-2, 2, 6, dtype=np.float32).reshape(2, 3)
    assert _same(_outputs(compiled, [x]), _outputs(with_op.import_model(blob, "NUMPY"), [x]))
    with pytest.raises(errors.InvalidModelError, match="com.example::Swish"):
        aioinfer.Core().import_model(blob, "NUMPY")


def _blob() -> bytes:
    core = aioinfer.Core()
    return bytes(core.compile_model(models.get("mlp", sizes=(8, 16, 4)), "NUMPY").export_model())


def _manifest(blob: bytes) -> tuple[dict[str, Any], int]:
    (length,) = export._LENGTH.unpack_from(blob, len(export.MAGIC))
    start = len(export.MAGIC) + export._LENGTH.size
    return json.loads(blob[start:start + length]), start + length


def _rewrite(blob: bytes, manifest: dict[str, Any]) -> bytes:
    """``blob`` with another manifest, checksummed as export_model does (a crafted blob)."""
    _, end = _manifest(blob)
    start = len(export.MAGIC) + export._LENGTH.size
    manifest = {**manifest, "crc32": "--------"}
    text = json.dumps(manifest).encode()
    text += b" " * (end - start - len(text))
    assert len(text) == end - start
    out = bytearray(blob[:start] + text + blob[end:])
    crc = f"{zlib.crc32(out) & 0xFFFFFFFF:08x}"
    out[start:end] = text.replace(export._BLANK, f'"crc32": "{crc}"'.encode(), 1)
    return bytes(out)


def test_truncated_or_corrupt_blobs_are_refused() -> None:
    blob = _blob()
    core = aioinfer.Core()
    _, end = _manifest(blob)
    broken = [b"", b"junk", blob[:10], blob[:end - 5], blob[:-1], blob + b"x"]
    for at in (20, end - 3, end + 10, len(blob) // 2, len(blob) - 1):  # manifest, model, data
        flipped = bytearray(blob)
        flipped[at] ^= 0x10
        broken.append(bytes(flipped))
    for data in broken:
        with pytest.raises(errors.InvalidModelError, match="NUMPY: import_model"):
            core.import_model(data, "NUMPY")
    assert core.import_model(_rewrite(blob, _manifest(blob)[0]), "NUMPY") is not None


def _first(tree: Any, tag: str) -> dict[str, Any]:
    """The first tagged value ``tag`` in the manifest's plan (depth first)."""
    if isinstance(tree, dict):
        if tree.get("$") == tag:
            return tree
        for value in tree.values():
            found = _first(value, tag) if isinstance(value, (dict, list)) else None
            if found is not None:
                return found
    elif isinstance(tree, list):
        for value in tree:
            found = _first(value, tag)
            if found is not None:
                return found
    return None  # type: ignore[return-value]


@pytest.mark.parametrize("reference", [
    {"$": "fn", "module": "os", "name": "system"},
    {"$": "fn", "module": "builtins", "name": "eval"},
    {"$": "fn", "module": "aioinfer.plugins.numpy.kernels.elementwise", "name": "np.load"},
    {"$": "fn", "module": "aioinfer.plugins.numpy.kernels.elementwise", "name": "__builtins__"},
    {"$": "fn", "module": "aioinfer.plugins.numpy.kernels.os", "name": "system"},
    {"$": "kernel", "domain": "", "op": "NoSuchOp", "since": 1},
    {"$": "Model", "f": {}},
    {"$": "pickle", "v": "80049500"},
])
def test_crafted_blobs_naming_code_are_refused(reference: dict[str, Any], tmp_path: Any) -> None:
    blob = _blob()
    manifest, _ = _manifest(blob)
    step = _first(manifest["plan"], "Step")
    step["f"]["fn"] = reference
    with pytest.raises(errors.InvalidModelError):
        aioinfer.Core().import_model(_rewrite(blob, manifest), "NUMPY")


@pytest.mark.parametrize("dtype", ["|O", "O", "V8", "[('a', '<f4')]"])
def test_crafted_array_types_are_refused(dtype: str) -> None:
    blob = _blob()
    manifest, _ = _manifest(blob)
    manifest["arrays"][0]["dtype"] = dtype  # object arrays from raw bytes would be pointers
    with pytest.raises(errors.InvalidModelError, match="dtype"):
        aioinfer.Core().import_model(_rewrite(blob, manifest), "NUMPY")


def test_crafted_array_bounds_are_refused() -> None:
    blob = _blob()
    manifest, _ = _manifest(blob)
    entry = manifest["arrays"][0]
    for change in ({"span": 10**12}, {"shape": [10**6, 10**6]}, {"start": 10**9},
                   {"strides": [-(10**9)] * len(entry["shape"] or [0])}):
        crafted = {**manifest, "arrays": [{**entry, **change}, *manifest["arrays"][1:]]}
        with pytest.raises(errors.InvalidModelError):
            aioinfer.Core().import_model(_rewrite(blob, crafted), "NUMPY")


def test_what_the_format_cannot_store_is_refused_on_export() -> None:
    core = aioinfer.Core()
    compiled = core.compile_model(models.get("mlp", sizes=(8, 16, 4)), "NUMPY")
    snapshot = compiled.exportable
    plan = snapshot.plan
    steps = snapshot.steps[id(plan)][1]
    steps[0] = type(steps[0])(lambda *a: a, steps[0].ins, steps[0].outs, steps[0].node,
                              steps[0].op_type)
    with pytest.raises(errors.NotSupportedError, match=repr(steps[0].node)):
        compiled.export_model()
