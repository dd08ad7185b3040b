"""Models whose weights sit in external files: they load through InferenceSession and
Core.read_model (a subfolder of the model's folder too); a location leaving the folder (``..``,
an absolute path) is refused with a typed error; Core's CACHE_DIR sees changed weights."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import onnx
import pytest

import aioinfer
import aioinfer.onnxruntime as ort
from aioinfer import errors

from .conftest import feeds_for, oracle, small


def _external(folder: pathlib.Path, name: str = "m.onnx", location: str = "m.weights"
              ) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / location).parent.mkdir(parents=True, exist_ok=True)
    path = folder / name
    onnx.save(small("mlp"), path, save_as_external_data=True, all_tensors_to_one_file=True,
              location=location, size_threshold=0)
    return path


def _relocated(path: pathlib.Path, into: pathlib.Path, location: str) -> pathlib.Path:
    """``path``'s model saved at ``into`` with every tensor's location set to ``location``."""
    crafted = onnx.load(path, load_external_data=False)
    for tensor in crafted.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    into.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(crafted, into)
    return into


@pytest.mark.parametrize("location", ["m.weights", "weights/m.weights"])
def test_external_weights_load_through_read_model_and_a_session(
        location: str, tmp_path: pathlib.Path) -> None:
    path = _external(tmp_path / "model", location=location)
    feeds = feeds_for(small("mlp"))
    expected = oracle(small("mlp"), feeds)[0]
    core = aioinfer.Core()
    model = core.read_model(str(path))
    assert all(t.data_location != onnx.TensorProto.EXTERNAL
               for t in model.proto.graph.initializer)  # the weights were read in
    np.testing.assert_allclose(np.asarray(core.compile_model(model, "NUMPY")(feeds)[0]),
                               expected, rtol=1e-4, atol=1e-5)
    session = ort.InferenceSession(str(path), providers=["OpenVINOExecutionProvider"],
                                   provider_options=[{"device_type": "NUMPY"}], core=core)
    np.testing.assert_allclose(session.run(None, feeds)[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("where", ["parent", "absolute"])
def test_a_location_leaving_the_model_folder_is_refused(where: str,
                                                        tmp_path: pathlib.Path) -> None:
    path = _external(tmp_path)
    location = "../m.weights" if where == "parent" else str(tmp_path / "m.weights")
    crafted = _relocated(path, tmp_path / "inner" / "m.onnx", location)
    core = aioinfer.Core()
    with pytest.raises(errors.InvalidModelError, match="m.weights"):
        core.read_model(str(crafted))
    with pytest.raises(errors.InvalidModelError, match="m.weights"):
        core.compile_model(str(crafted), "NUMPY")
    with pytest.raises(errors.InvalidModelError, match="m.weights"):
        ort.InferenceSession(str(crafted), core=core)


def test_core_cache_dir_sees_changed_external_weights(tmp_path: pathlib.Path) -> None:
    path = _external(tmp_path / "model")
    feeds = feeds_for(small("mlp"))
    config = {"CACHE_DIR": str(tmp_path / "cache")}
    aioinfer.Core().compile_model(path, "NUMPY", config)
    assert aioinfer.Core().compile_model(path, "NUMPY", config).get_property(
        "LOADED_FROM_CACHE")
    # new values for the first tensor, written over its bytes in the external file; the
    # .onnx file keeps its bytes and mtime
    first = onnx.load(path, load_external_data=False).graph.initializer[0]
    where = {e.key: e.value for e in first.external_data}
    offset, length = int(where.get("offset", 0)), int(where["length"])
    weights = tmp_path / "model" / "m.weights"
    data = bytearray(weights.read_bytes())
    values = np.frombuffer(bytes(data[offset:offset + length]), np.float32) * -1.0
    data[offset:offset + length] = values.astype(np.float32).tobytes()
    stat = path.stat()
    weights.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = onnx.load(path)
    assert np.array_equal(onnx.numpy_helper.to_array(changed.graph.initializer[0]).ravel(),
                          values)
    expected = oracle(changed, feeds)[0]
    with pytest.warns(RuntimeWarning, match="CACHE_DIR: .*m.weights.* changed"):
        again = aioinfer.Core().compile_model(path, "NUMPY", config)
    assert again.get_property("LOADED_FROM_CACHE") is False
    np.testing.assert_allclose(np.asarray(again(feeds)[0]), expected, rtol=1e-4, atol=1e-5)
