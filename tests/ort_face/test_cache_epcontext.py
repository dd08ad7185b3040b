"""cache_dir (keyed, atomic, verified) and EP context models (embed modes, paths, a fresh
process loading one without compiling)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import onnx
import pytest

import aioinfer
import aioinfer.onnxruntime as ort
from aioinfer import errors
from aioinfer.ort import cache, epcontext

from .conftest import feeds_for, oracle, small

OV = "OpenVINOExecutionProvider"


def _session(path: pathlib.Path, core: aioinfer.Core, cache_dir: pathlib.Path,
             device: str = "TEMPLATE") -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=[OV], provider_options=[
        {"device_type": device, "cache_dir": str(cache_dir)}], core=core)


def test_cache_hit_and_rebuild_of_corrupt_entries(cnn_path: pathlib.Path,
                                                  tmp_path: pathlib.Path) -> None:
    cache_dir = tmp_path / "cache"
    feeds = feeds_for(small("cnn"))
    expected = oracle(small("cnn"), feeds)[0]
    cold = _session(cnn_path, aioinfer.Core(), cache_dir)
    assert not cold.loaded_from_cache
    (entry,) = list(cache_dir.glob("*.blob"))
    warm = _session(cnn_path, aioinfer.Core(), cache_dir)
    assert warm.loaded_from_cache
    np.testing.assert_allclose(warm.run(None, feeds)[0], expected, rtol=1e-4, atol=1e-6)
    data = entry.read_bytes()
    for broken in (data[: len(data) // 2], data[:-1] + bytes([data[-1] ^ 1]), b"junk"):
        entry.write_bytes(broken)
        with pytest.warns(RuntimeWarning, match="ignoring cache entry"):
            again = _session(cnn_path, aioinfer.Core(), cache_dir)
        assert not again.loaded_from_cache
        np.testing.assert_allclose(again.run(None, feeds)[0], expected, rtol=1e-4, atol=1e-6)
        assert entry.read_bytes() == data  # rebuilt
    assert not list(cache_dir.glob(".tmp-*"))


def test_cache_key_covers_model_and_options(cnn_path: pathlib.Path) -> None:
    ov = ort.InferenceSession
    core = aioinfer.Core()
    base = ov(small("mlp").SerializeToString(), core=core)._built.choices
    options = ort.SessionOptions()
    key = cache.cache_key(str(cnn_path), base, options)
    assert key == cache.cache_key(str(cnn_path), base, options)
    options.intra_op_num_threads = 1
    assert key != cache.cache_key(str(cnn_path), base, options)
    os.utime(cnn_path, ns=(1, 1))
    assert key != cache.cache_key(str(cnn_path), base, ort.SessionOptions())
    assert cache.cache_key(b"a", base, options) != cache.cache_key(b"b", base, options)


def test_cache_dir_on_a_device_without_export_is_passed_to_the_engine(
        cnn_path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    session = _session(cnn_path, aioinfer.Core(), tmp_path / "c", device="NUMPY")
    assert any("cannot export" in note for note in session._built.notes)
    assert session.run(None, feeds_for(small("cnn")))[0].shape == (2, 1000)


@pytest.mark.parametrize("embed", ["0", "1"])
def test_ep_context_round_trip(embed: str, cnn_path: pathlib.Path) -> None:
    options = ort.SessionOptions()
    options.add_session_config_entry("ep.context_enable", "1")
    options.add_session_config_entry("ep.context_embed_mode", embed)
    providers = [(OV, {"device_type": "TEMPLATE"})]
    first = ort.InferenceSession(str(cnn_path), options, providers=providers,
                                 core=aioinfer.Core())
    ctx = pathlib.Path(first.ep_context_file or "")
    assert ctx == cnn_path.with_name("cnn_ctx.onnx") and ctx.is_file()
    proto = onnx.load(ctx)
    (node,) = proto.graph.node
    assert (node.op_type, node.domain) == ("EPContext", "com.microsoft")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["embed_mode"] == int(embed) and attrs["main_context"] == 1
    assert attrs["source"] == OV.encode() and attrs["hardware_architecture"] == b"aioinfer:TEMPLATE"
    if embed == "0":
        assert (cnn_path.parent / attrs["ep_cache_context"].decode()).is_file()
    loaded = ort.InferenceSession(str(ctx), providers=providers, core=aioinfer.Core())
    feeds = feeds_for(small("cnn"))
    np.testing.assert_array_equal(loaded.run(None, feeds)[0], first.run(None, feeds)[0])
    assert [i.name for i in loaded.get_inputs()] == ["input"]


def test_ep_context_paths_must_stay_inside(tmp_path: pathlib.Path) -> None:
    with pytest.raises(errors.InvalidModelError, match="relative"):
        epcontext.inside(str(tmp_path), "/etc/passwd")
    with pytest.raises(errors.InvalidModelError, match="leaves the model's folder"):
        epcontext.inside(str(tmp_path), "../outside.bin")
    assert epcontext.inside(str(tmp_path), "a.bin") == str((tmp_path / "a.bin").resolve())


def test_ep_context_errors(cnn_path: pathlib.Path) -> None:
    options = ort.SessionOptions()
    options.add_session_config_entry("ep.context_enable", "1")
    with pytest.raises(errors.InvalidModelError, match="ep.context_file_path"):
        ort.InferenceSession(small("cnn").SerializeToString(), options,
                             providers=[(OV, {"device_type": "TEMPLATE"})], core=aioinfer.Core())
    with pytest.raises(errors.NotSupportedError, match="cannot export"):
        ort.InferenceSession(str(cnn_path), options,
                             providers=[(OV, {"device_type": "NUMPY"})], core=aioinfer.Core())


FRESH = '''
import sys, time
import numpy as np
import aioinfer
import aioinfer.onnxruntime as ort
calls = []
original = aioinfer.Core.compile_model
aioinfer.Core.compile_model = lambda *a, **k: calls.append(a) or original(*a, **k)
start = time.perf_counter()
session = ort.InferenceSession(sys.argv[1], providers=[("OpenVINOExecutionProvider",
                               {"device_type": "TEMPLATE"})])
load = time.perf_counter() - start
x = np.zeros([2 if isinstance(d, str) else d for d in session.get_inputs()[0].shape], np.float32)
out = session.run(None, {"input": x})[0]
print("compile_calls", len(calls), "load_s", round(load, 4), out.shape)
'''


def test_ep_context_loads_in_a_fresh_process_without_compiling(cnn_path: pathlib.Path) -> None:
    options = ort.SessionOptions()
    options.add_session_config_entry("ep.context_enable", "1")
    options.add_session_config_entry("ep.context_embed_mode", "1")
    first = ort.InferenceSession(str(cnn_path), options,
                                 providers=[(OV, {"device_type": "TEMPLATE"})],
                                 core=aioinfer.Core())
    done = subprocess.run([sys.executable, "-c", FRESH, str(first.ep_context_file)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "compile_calls 0" in done.stdout and "(2, 1000)" in done.stdout
