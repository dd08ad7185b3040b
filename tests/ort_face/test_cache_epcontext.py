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


def _breakages(data: bytes) -> dict[str, bytes]:
    """What a crash, a bad disk or a stranger can leave in place of an entry."""
    (length,) = cache._LENGTH.unpack_from(data, len(cache.MAGIC))
    head = len(cache.MAGIC) + cache._LENGTH.size

    def flip(at: int) -> bytes:
        out = bytearray(data)
        out[at] ^= 0x01
        return bytes(out)

    return {"half": data[: len(data) // 2], "header only": data[:head + length],
            "one byte short": data[:-1], "one byte more": data + b"\0", "empty": b"",
            "junk": b"junk", "flipped last byte": flip(len(data) - 1),
            "flipped middle byte": flip((head + length + len(data)) // 2),
            "flipped header byte": flip(head + 3), "flipped blob's first byte": flip(
                head + length)}


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE"])
def test_cache_hit_and_rebuild_of_broken_entries(device: str, cnn_path: pathlib.Path,
                                                 tmp_path: pathlib.Path) -> None:
    cache_dir = tmp_path / "cache"
    feeds = feeds_for(small("cnn"))
    cold = _session(cnn_path, aioinfer.Core(), cache_dir, device)
    assert not cold.loaded_from_cache
    expected = cold.run(None, feeds)[0]
    np.testing.assert_allclose(expected, oracle(small("cnn"), feeds)[0], rtol=1e-4, atol=1e-6)
    (entry,) = list(cache_dir.glob("*.blob"))
    warm = _session(cnn_path, aioinfer.Core(), cache_dir, device)
    assert warm.loaded_from_cache
    np.testing.assert_array_equal(warm.run(None, feeds)[0], expected)  # bit-identical
    data = entry.read_bytes()
    for what, broken in _breakages(data).items():
        entry.write_bytes(broken)
        with pytest.warns(RuntimeWarning, match="ignoring cache entry"):
            again = _session(cnn_path, aioinfer.Core(), cache_dir, device)
        assert not again.loaded_from_cache, what
        np.testing.assert_array_equal(again.run(None, feeds)[0], expected, err_msg=what)
        assert entry.read_bytes() == data, what  # rebuilt, the same bytes
    assert not list(cache_dir.glob(".tmp-*"))


def test_half_written_temporary_files_are_never_read(cnn_path: pathlib.Path,
                                                     tmp_path: pathlib.Path) -> None:
    cache_dir = tmp_path / "cache"
    _session(cnn_path, aioinfer.Core(), cache_dir, "NUMPY")
    (entry,) = list(cache_dir.glob("*.blob"))
    data = entry.read_bytes()
    entry.unlink()  # a writer killed mid-write leaves only its temporary file
    (cache_dir / ".tmp-killed.blob").write_bytes(data[: len(data) // 3])
    session = _session(cnn_path, aioinfer.Core(), cache_dir, "NUMPY")
    assert not session.loaded_from_cache and entry.read_bytes() == data


def test_a_cache_dir_that_cannot_be_written_still_compiles(cnn_path: pathlib.Path,
                                                           tmp_path: pathlib.Path) -> None:
    feeds = feeds_for(small("cnn"))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(RuntimeWarning, match="cannot write"):
        session = _session(cnn_path, aioinfer.Core(), blocker / "cache", "NUMPY")
    assert not session.loaded_from_cache
    np.testing.assert_allclose(session.run(None, feeds)[0], oracle(small("cnn"), feeds)[0],
                               rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs POSIX permissions that bind (root writes anyway)")
def test_a_read_only_cache_dir_still_compiles(cnn_path: pathlib.Path,
                                              tmp_path: pathlib.Path) -> None:
    cache_dir = tmp_path / "ro"
    cache_dir.mkdir()
    cache_dir.chmod(0o500)
    try:
        with pytest.warns(RuntimeWarning, match="cannot write"):
            session = _session(cnn_path, aioinfer.Core(), cache_dir, "NUMPY")
        assert session.run(None, feeds_for(small("cnn")))[0].shape == (2, 1000)
    finally:
        cache_dir.chmod(0o700)


FULL_DISK = """
import resource, signal, sys, warnings
import numpy as np
import aioinfer, aioinfer.onnxruntime as ort
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    session = ort.InferenceSession(sys.argv[1], providers=[("OpenVINOExecutionProvider",
                                   {"device_type": "NUMPY", "cache_dir": sys.argv[2]})],
                                   core=aioinfer.Core())
np.save(sys.stdout.buffer, session.run(None, {"input": np.load(sys.argv[3])})[0])
sys.stderr.write("|".join(str(w.message) for w in caught))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_FSIZE is POSIX")
def test_a_full_cache_dir_still_compiles(cnn_path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """A real full-disk error (EFBIG from RLIMIT_FSIZE) while writing the entry."""
    import io

    feeds = feeds_for(small("cnn"))
    np.save(tmp_path / "x.npy", feeds["input"])
    # the NumPy tier: numba's own kernel cache would hit the same limit when it is stale
    env = {**os.environ, "AIOINFER_JIT": "0"}
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(cnn_path),
                           str(tmp_path / "cache"), str(tmp_path / "x.npy")],
                          capture_output=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert "cannot write" in done.stderr.decode() and "File too large" in done.stderr.decode()
    np.testing.assert_allclose(np.load(io.BytesIO(done.stdout)), oracle(small("cnn"), feeds)[0],
                               rtol=1e-4, atol=1e-6)
    assert not list((tmp_path / "cache").glob("*.blob"))  # no partial entry left in place
    assert not list((tmp_path / "cache").glob(".tmp-*"))


def test_two_processes_compiling_into_one_cache_dir_at_once() -> None:
    """``benchmarks/cache_race.py`` for a few rounds (the full check runs 50)."""
    script = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "cache_race.py"
    done = subprocess.run([sys.executable, str(script), "--repeat", "4"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "8 of 8 results right, 0 wrong, 0 processes failed" in done.stdout


EVIL = """
import os
class Evil:
    def __reduce__(self):
        return (os.system, ("touch {marker}",))
"""


def test_a_cache_entry_never_runs_code(cnn_path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """An entry whose blob is a pickle (with a valid header and checksum) is refused."""
    import pickle

    cache_dir = tmp_path / "cache"
    _session(cnn_path, aioinfer.Core(), cache_dir, "NUMPY")
    (entry,) = list(cache_dir.glob("*.blob"))
    marker = tmp_path / "pwned"
    scope: dict[str, object] = {}
    exec(EVIL.format(marker=marker), scope)  # noqa: S102 - builds the attacker's object
    for device in ("NUMPY", "TEMPLATE"):
        evil = pickle.dumps(scope["Evil"]())
        entry.write_bytes(cache.encode(entry.stem, device, {}, evil))
        with pytest.warns(RuntimeWarning, match="ignoring cache entry"):
            session = _session(cnn_path, aioinfer.Core(), cache_dir, "NUMPY")
        assert not session.loaded_from_cache
    assert not marker.exists()


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


def test_cache_dir_on_cpu_keeps_openvinos_export(cnn_path: pathlib.Path,
                                                 tmp_path: pathlib.Path) -> None:
    """CPU (the proxy over OpenVINO): one entry of this cache, OpenVINO's blob imported on
    OPENVINO directly; OpenVINO's own cache is not asked for a second copy."""
    pytest.importorskip("openvino")
    feeds = feeds_for(small("cnn"))
    cold = _session(cnn_path, aioinfer.Core(), tmp_path / "c", device="CPU")
    key = cache.cache_key(str(cnn_path), cold._built.choices, ort.SessionOptions())
    assert [p.name for p in (tmp_path / "c").iterdir()] == [f"{key}.blob"]
    warm = _session(cnn_path, aioinfer.Core(), tmp_path / "c", device="CPU")
    assert warm.loaded_from_cache and warm.compiled_model.device == "OPENVINO"
    assert warm.device == cold.device
    np.testing.assert_array_equal(warm.run(None, feeds)[0], cold.run(None, feeds)[0])


def test_openvino_export_import_round_trip_and_refusals() -> None:
    pytest.importorskip("openvino")
    core = aioinfer.Core()
    compiled = core.compile_model(small("cnn"), "OPENVINO")
    blob = compiled.export_model()
    feeds = feeds_for(small("cnn"))
    for data in (blob, bytearray(blob)):
        imported = core.import_model(data, "OPENVINO")
        assert [p.name for p in imported.inputs] == ["input"]
        np.testing.assert_array_equal(imported(feeds)[0], compiled(feeds)[0])
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x01  # in OpenVINO's own blob, where nothing else would see it
    for broken in (b"", b"junk", blob[:100], blob[:-10], bytes(flipped)):
        with pytest.raises(errors.InvalidModelError, match="OPENVINO: import_model"):
            core.import_model(broken, "OPENVINO")


def test_cache_dir_on_a_device_that_cannot_export(cnn_path: pathlib.Path,
                                                  tmp_path: pathlib.Path) -> None:
    session = _session(cnn_path, aioinfer.Core(), tmp_path / "c",
                       device="AUTO:NUMPY,TEMPLATE")  # HETERO, MULTI and BATCH export
    assert any("cannot export" in note for note in session._built.notes)
    assert session.run(None, feeds_for(small("cnn")))[0].shape == (2, 1000)
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


def test_cache_dir_keeps_a_hetero_session(cnn_path: pathlib.Path,
                                          tmp_path: pathlib.Path) -> None:
    feeds = feeds_for(small("cnn"))
    cold = _session(cnn_path, aioinfer.Core(), tmp_path, device="HETERO:NUMPY,TEMPLATE")
    warm = _session(cnn_path, aioinfer.Core(), tmp_path, device="HETERO:NUMPY,TEMPLATE")
    assert not cold.loaded_from_cache and warm.loaded_from_cache
    assert cold.run(None, feeds)[0].tobytes() == warm.run(None, feeds)[0].tobytes()


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE"])
@pytest.mark.parametrize("embed", ["0", "1"])
def test_ep_context_round_trip(embed: str, device: str, cnn_path: pathlib.Path) -> None:
    options = ort.SessionOptions()
    options.add_session_config_entry("ep.context_enable", "1")
    options.add_session_config_entry("ep.context_embed_mode", embed)
    providers = [(OV, {"device_type": device})]
    first = ort.InferenceSession(str(cnn_path), options, providers=providers,
                                 core=aioinfer.Core())
    ctx = pathlib.Path(first.ep_context_file or "")
    assert ctx == cnn_path.with_name("cnn_ctx.onnx") and ctx.is_file()
    proto = onnx.load(ctx)
    (node,) = proto.graph.node
    assert (node.op_type, node.domain) == ("EPContext", "com.microsoft")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["embed_mode"] == int(embed) and attrs["main_context"] == 1
    assert attrs["source"] == OV.encode()
    assert attrs["hardware_architecture"] == f"aioinfer:{device}".encode()
    if embed == "0":
        assert (cnn_path.parent / attrs["ep_cache_context"].decode()).is_file()
    loaded = ort.InferenceSession(str(ctx), providers=providers, core=aioinfer.Core())
    assert loaded._built.from_ep_context
    feeds = feeds_for(small("cnn"))
    np.testing.assert_array_equal(loaded.run(None, feeds)[0], first.run(None, feeds)[0])
    assert [i.name for i in loaded.get_inputs()] == ["input"]
    assert [o.shape for o in loaded.get_outputs()] == [o.shape for o in first.get_outputs()]


def test_ep_context_with_a_corrupt_blob_is_refused(cnn_path: pathlib.Path) -> None:
    options = ort.SessionOptions()
    options.add_session_config_entry("ep.context_enable", "1")
    providers = [(OV, {"device_type": "NUMPY"})]
    first = ort.InferenceSession(str(cnn_path), options, providers=providers,
                                 core=aioinfer.Core())
    (blob,) = list(cnn_path.parent.glob("cnn_ctx_*.bin"))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x04  # one flipped bit in the weights
    blob.write_bytes(bytes(data))
    with pytest.raises(errors.InvalidModelError, match="checksum"):
        ort.InferenceSession(str(first.ep_context_file), providers=providers,
                             core=aioinfer.Core())


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
        ort.InferenceSession(str(cnn_path), options, providers=[
            (OV, {"device_type": "AUTO:NUMPY,TEMPLATE"})], core=aioinfer.Core())
    options.add_session_config_entry("ep.context_embed_mode", "2")
    with pytest.raises(errors.InvalidModelError, match="ep.context_embed_mode"):
        ort.InferenceSession(str(cnn_path), options, providers=[
            (OV, {"device_type": "NUMPY"})], core=aioinfer.Core())


FRESH = '''
import cProfile, pstats, sys, time
import numpy as np
import aioinfer.onnxruntime as ort
profile = cProfile.Profile()
start = time.perf_counter()
profile.enable()
session = ort.InferenceSession(sys.argv[1], providers=[("OpenVINOExecutionProvider",
                               {"device_type": sys.argv[2]})])
profile.disable()
load = time.perf_counter() - start
called = {f"{where[0]}:{where[2]}" for where in pstats.Stats(profile).stats}
steps = sorted(c for c in called if c.endswith((
    "compiler.py:compile_graph", "pipeline.py:optimize", "core.py:compile_model",
    "plugin.py:compile_model")))
x = np.load(sys.argv[3])
np.save(sys.argv[4], session.run(None, {"input": x})[0])
print("compile_steps", steps, "load_s", round(load, 4))
'''


def test_ep_context_loads_in_a_fresh_process_without_compiling(
        cnn_path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """On NUMPY (TEMPLATE has no compiled form: its blob is the model, checked again on
    import by its compile_model, which is all a TEMPLATE compile is)."""
    device = "NUMPY"
    options = ort.SessionOptions()
    options.add_session_config_entry("ep.context_enable", "1")
    first = ort.InferenceSession(str(cnn_path), options,
                                 providers=[(OV, {"device_type": device})],
                                 core=aioinfer.Core())
    feeds = feeds_for(small("cnn"))
    np.save(tmp_path / "x.npy", feeds["input"])
    done = subprocess.run([sys.executable, "-c", FRESH, str(first.ep_context_file), device,
                           str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "compile_steps [] " in done.stdout, done.stdout  # no graph pass, no compile
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), first.run(None, feeds)[0])


def test_ep_context_file_path_and_node_name_prefix(cnn_path: pathlib.Path,
                                                   tmp_path: pathlib.Path) -> None:
    options = ort.SessionOptions()
    options.add_session_config_entry("ep.context_enable", "1")
    options.add_session_config_entry("ep.context_file_path", str(tmp_path / "out" / "m.onnx"))
    options.add_session_config_entry("ep.context_node_name_prefix", "part1_")
    first = ort.InferenceSession(small("cnn").SerializeToString(), options,
                                 providers=[(OV, {"device_type": "NUMPY"})], core=aioinfer.Core())
    assert first.ep_context_file == str(tmp_path / "out" / "m.onnx")
    (node,) = onnx.load(first.ep_context_file).graph.node
    assert node.name == "part1_EPContext_0"
    assert (tmp_path / "out" / "m_NUMPY.bin").is_file()


def test_external_data_models_load_and_changed_weights_make_the_entry_stale(
        tmp_path: pathlib.Path) -> None:
    proto = small("cnn")
    path = tmp_path / "ext.onnx"
    onnx.save(small("cnn"), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.weights", size_threshold=0)  # (save rewrites what it is given)
    feeds = feeds_for(proto)
    cold = _session(path, aioinfer.Core(), tmp_path / "c", "NUMPY")
    np.testing.assert_allclose(cold.run(None, feeds)[0], oracle(proto, feeds)[0], rtol=1e-4,
                               atol=1e-6)
    assert _session(path, aioinfer.Core(), tmp_path / "c", "NUMPY").loaded_from_cache
    # new weights in the same external file, the .onnx file untouched: never the old results
    changed = onnx.load(path)
    for tensor in changed.graph.initializer:
        if tensor.name == "fc.bias":
            bias = onnx.numpy_helper.to_array(tensor) + 1.0
            tensor.CopyFrom(onnx.numpy_helper.from_array(bias.astype(np.float32), tensor.name))
    expected = oracle(changed, feeds)[0]
    onnx.save(changed, tmp_path / "ext2.onnx", save_as_external_data=True,
              all_tensors_to_one_file=True, location="ext.weights", size_threshold=0)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    with pytest.warns(RuntimeWarning, match="external data .*ext.weights.* changed"):
        again = _session(path, aioinfer.Core(), tmp_path / "c", "NUMPY")
    assert not again.loaded_from_cache
    np.testing.assert_allclose(again.run(None, feeds)[0], expected, rtol=1e-4, atol=1e-6)


def test_external_data_outside_the_model_folder_is_refused(tmp_path: pathlib.Path) -> None:
    proto = small("mlp")
    inner = tmp_path / "inner"
    inner.mkdir()
    onnx.save(proto, tmp_path / "w.onnx", save_as_external_data=True,
              all_tensors_to_one_file=True, location="w.weights", size_threshold=0)
    crafted = onnx.load(tmp_path / "w.onnx", load_external_data=False)
    for tensor in crafted.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../w.weights"
    onnx.save(crafted, inner / "m.onnx")
    with pytest.raises(errors.InvalidModelError):
        ort.InferenceSession(str(inner / "m.onnx"), core=aioinfer.Core())
