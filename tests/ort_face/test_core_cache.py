"""CACHE_DIR on the Core (OpenVINO's model cache): per compile or Core-wide, LOADED_FROM_CACHE,
broken entries rebuilt, the key's parts, bad values, devices that cannot export."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import onnx
import pytest

import aioinfer
from aioinfer import errors
from aioinfer.ort import cache

from .conftest import feeds_for, oracle, small

LOADED = "LOADED_FROM_CACHE"


def _entries(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(folder.glob("*.blob"))


def _run(compiled: aioinfer.CompiledModel, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(compiled(feeds)[0])


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE", "CPU"])
@pytest.mark.parametrize("how", ["config", "core"])
def test_a_warm_compile_loads_from_the_cache(device: str, how: str, cnn_path: pathlib.Path,
                                             tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "cache"
    feeds = feeds_for(small("cnn"))

    def compile_once() -> aioinfer.CompiledModel:
        core = aioinfer.Core()  # a fresh Core: nothing kept in memory between the two
        if how == "core":
            core.set_property({"CACHE_DIR": str(folder)})
            return core.compile_model(str(cnn_path), device)
        return core.compile_model(cnn_path, device, {"CACHE_DIR": folder})

    cold = compile_once()
    assert cold.get_property(LOADED) is False
    expected = _run(cold, feeds)
    np.testing.assert_allclose(expected, oracle(small("cnn"), feeds)[0], rtol=1e-4, atol=1e-4)
    (entry,) = _entries(folder)
    warm = compile_once()
    assert warm.get_property(LOADED) is True
    assert warm.get_property("SUPPORTED_PROPERTIES")[LOADED] == "RO"
    np.testing.assert_array_equal(_run(warm, feeds), expected)  # bit-identical
    assert _entries(folder) == [entry]
    with pytest.raises(errors.ReadOnlyPropertyError) as caught:
        warm.set_property({LOADED: False})
    assert caught.value.key == LOADED


@pytest.mark.parametrize("form", ["bytes", "proto", "model"])
def test_models_given_in_memory_are_keyed_by_their_content(form: str,
                                                           tmp_path: pathlib.Path) -> None:
    proto = small("cnn")
    feeds = feeds_for(proto)

    def given(core: aioinfer.Core, p: onnx.ModelProto) -> object:
        return {"bytes": p.SerializeToString(), "proto": p,
                "model": core.read_model(p)}[form]

    core = aioinfer.Core()
    core.set_property({"CACHE_DIR": str(tmp_path)})
    cold = core.compile_model(given(core, proto), "NUMPY")
    warm = core.compile_model(given(core, proto), "NUMPY")
    assert (cold.get_property(LOADED), warm.get_property(LOADED)) == (False, True)
    np.testing.assert_array_equal(_run(warm, feeds), _run(cold, feeds))
    other = onnx.ModelProto()
    other.CopyFrom(proto)
    weight = other.graph.initializer[0]
    values = onnx.numpy_helper.to_array(weight) * 2
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    changed = core.compile_model(given(core, other), "NUMPY")
    assert changed.get_property(LOADED) is False  # other weights: another entry
    assert len(_entries(tmp_path)) == 2
    np.testing.assert_allclose(_run(changed, feeds), oracle(other, feeds)[0], rtol=1e-4,
                               atol=1e-4)


def _broken(data: bytes) -> dict[str, bytes]:
    (length,) = cache._LENGTH.unpack_from(data, len(cache.MAGIC))
    blob_at = len(cache.MAGIC) + cache._LENGTH.size + length

    def flip(at: int) -> bytes:
        out = bytearray(data)
        out[at] ^= 0x10
        return bytes(out)

    return {"empty": b"", "half": data[: len(data) // 2], "header only": data[:blob_at],
            "one byte short": data[:-1], "one byte more": data + b"\0",
            "flipped header byte": flip(len(cache.MAGIC) + cache._LENGTH.size + 2),
            "flipped blob byte": flip((blob_at + len(data)) // 2),
            "flipped last byte": flip(len(data) - 1)}


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE"])
def test_a_truncated_or_corrupt_entry_is_rebuilt(device: str, cnn_path: pathlib.Path,
                                                 tmp_path: pathlib.Path) -> None:
    feeds = feeds_for(small("cnn"))
    config = {"CACHE_DIR": str(tmp_path / "cache")}
    expected = _run(aioinfer.Core().compile_model(cnn_path, device, config), feeds)
    (entry,) = _entries(tmp_path / "cache")
    data = entry.read_bytes()
    for what, broken in _broken(data).items():
        entry.write_bytes(broken)
        with pytest.warns(RuntimeWarning, match="CACHE_DIR: ignoring cache entry"):
            again = aioinfer.Core().compile_model(cnn_path, device, config)
        assert again.get_property(LOADED) is False, what
        np.testing.assert_array_equal(_run(again, feeds), expected, err_msg=what)
        assert entry.read_bytes() == data, what  # rewritten whole
        warm = aioinfer.Core().compile_model(cnn_path, device, config)
        assert warm.get_property(LOADED) is True, what
    assert not list((tmp_path / "cache").glob(".tmp-*"))


def test_every_compile_affecting_setting_makes_its_own_entry(cnn_path: pathlib.Path,
                                                             tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "cache"
    feeds = feeds_for(small("cnn"))
    core = aioinfer.Core()
    core.set_property({"CACHE_DIR": str(folder)})
    base = core.compile_model(cnn_path, "NUMPY")
    expected = _run(base, feeds)
    seen = {tuple(_entries(folder))}

    def fresh(compiled: aioinfer.CompiledModel) -> None:
        assert compiled.get_property(LOADED) is False
        np.testing.assert_allclose(_run(compiled, feeds), expected, rtol=1e-5, atol=1e-6)
        now = tuple(_entries(folder))
        assert now not in seen and len(now) == len(seen) + 1
        seen.add(now)

    fresh(core.compile_model(cnn_path, "NUMPY", {"PERF_COUNT": True}))  # a config property
    fresh(core.compile_model(cnn_path, "NUMPY", {"PERFORMANCE_HINT": "THROUGHPUT"}))
    fresh(core.compile_model(cnn_path, "TEMPLATE"))  # another device
    core.set_property("NUMPY", {"INFERENCE_NUM_THREADS": 1})  # a property of the plugin
    fresh(core.compile_model(cnn_path, "NUMPY"))
    core.set_property("NUMPY", {"INFERENCE_NUM_THREADS": 0})
    assert core.compile_model(cnn_path, "NUMPY").get_property(LOADED) is True  # as before
    # the same config again hits its own entry
    assert core.compile_model(cnn_path, "NUMPY", {"PERF_COUNT": True}).get_property(LOADED)
    # a rewritten model file (new size or mtime) is another model
    proto = small("cnn")
    proto.doc_string = "rewritten"
    onnx.save(proto, cnn_path)
    fresh(core.compile_model(cnn_path, "NUMPY"))


@pytest.mark.parametrize("value", [5, 1.5, b"/tmp/cache", ["a"], "bad\0path", "FILE"])
def test_a_bad_cache_dir_is_a_typed_error_naming_the_property(value: object,
                                                              cnn_path: pathlib.Path) -> None:
    if value == "FILE":
        value = str(cnn_path)  # an existing file is not a folder
    core = aioinfer.Core()
    with pytest.raises(errors.InvalidPropertyValueError, match="CACHE_DIR") as caught:
        core.set_property({"CACHE_DIR": value})
    assert caught.value.key == "CACHE_DIR"
    with pytest.raises(errors.InvalidPropertyValueError, match="CACHE_DIR") as caught:
        core.compile_model(cnn_path, "NUMPY", {"CACHE_DIR": value})
    assert caught.value.key == "CACHE_DIR"
    assert core.compile_model(cnn_path, "NUMPY").get_property(LOADED) is False  # nothing set


@pytest.mark.parametrize("device", ["AUTO:NUMPY,TEMPLATE", "ORT"])  # HETERO, MULTI export
def test_devices_that_cannot_export_compile_normally(device: str, cnn_path: pathlib.Path,
                                                     tmp_path: pathlib.Path) -> None:
    feeds = feeds_for(small("cnn"))
    core = aioinfer.Core()
    core.set_property({"CACHE_DIR": str(tmp_path / "cache")})
    for _ in range(2):
        compiled = core.compile_model(cnn_path, device)
        assert compiled.get_property(LOADED) is False
        np.testing.assert_allclose(_run(compiled, feeds), oracle(small("cnn"), feeds)[0],
                                   rtol=1e-4, atol=1e-4)
    assert not (tmp_path / "cache").exists() or not _entries(tmp_path / "cache")


def test_an_empty_cache_dir_turns_the_cache_off(cnn_path: pathlib.Path,
                                                tmp_path: pathlib.Path) -> None:
    core = aioinfer.Core()
    core.set_property({"CACHE_DIR": str(tmp_path)})
    core.compile_model(cnn_path, "NUMPY")
    assert core.compile_model(cnn_path, "NUMPY", {"CACHE_DIR": ""}).get_property(LOADED) is False
    core.set_property({"CACHE_DIR": ""})
    assert core.compile_model(cnn_path, "NUMPY").get_property(LOADED) is False
    assert len(_entries(tmp_path)) == 1


def test_a_folder_that_cannot_be_written_costs_a_warning(cnn_path: pathlib.Path,
                                                         tmp_path: pathlib.Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    feeds = feeds_for(small("cnn"))
    with pytest.warns(RuntimeWarning, match="CACHE_DIR: cannot write"):
        compiled = aioinfer.Core().compile_model(cnn_path, "NUMPY",
                                                 {"CACHE_DIR": str(blocker / "cache")})
    assert compiled.get_property(LOADED) is False
    np.testing.assert_allclose(_run(compiled, feeds), oracle(small("cnn"), feeds)[0],
                               rtol=1e-4, atol=1e-4)


def test_a_warm_compile_of_a_path_does_not_read_the_model(cnn_path: pathlib.Path,
                                                          tmp_path: pathlib.Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    core = aioinfer.Core()
    core.set_property({"CACHE_DIR": str(tmp_path / "cache")})
    core.compile_model(cnn_path, "NUMPY")

    def no_read(*_: object) -> None:
        raise AssertionError("the model was read on a cache hit")

    monkeypatch.setattr(core, "read_model", no_read)
    assert core.compile_model(os.fspath(cnn_path), "NUMPY").get_property(LOADED) is True


def test_a_session_reports_loaded_from_cache_on_its_compiled_model(cnn_path: pathlib.Path,
                                                                   tmp_path: pathlib.Path
                                                                   ) -> None:
    import aioinfer.onnxruntime as ort

    def session() -> ort.InferenceSession:
        return ort.InferenceSession(str(cnn_path), providers=["OpenVINOExecutionProvider"],
                                    provider_options=[{"device_type": "NUMPY",
                                                       "cache_dir": str(tmp_path)}],
                                    core=aioinfer.Core())

    assert session().compiled_model.get_property(LOADED) is False
    warm = session()
    assert warm.loaded_from_cache and warm.compiled_model.get_property(LOADED) is True
