"""The seeded corpus (``corpus/``, written by ``corpus/make_corpus.py``): each bad model read
from its file ends in the typed error it names, with its message naming the part at fault;
the good one runs right. External data may come only from inside the model's folder."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import aioinfer
from aioinfer import errors

CORPUS = pathlib.Path(__file__).parent / "corpus"
EXPECTED: dict[str, list[str]] = json.loads((CORPUS / "expected.json").read_text())
X = np.arange(6, dtype=np.float32).reshape(2, 3)


def _run(path: pathlib.Path, device: str) -> list[np.ndarray]:
    core = aioinfer.Core()
    compiled = core.compile_model(core.read_model(str(path)), device)
    feed = {"x": X} if compiled.inputs else {}
    return compiled.create_infer_request().infer(feed).to_list()


def test_the_corpus_is_small() -> None:
    files = [p for p in CORPUS.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 64 * 1024


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE", "HETERO:NUMPY,TEMPLATE"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_case(name: str, device: str) -> None:
    kind, text = EXPECTED[name]
    path = CORPUS / "models" / f"{name}.onnx"
    if kind == "ok":
        got = _run(path, device)
        np.testing.assert_array_equal(got[0], X + np.arange(6, dtype=np.float32).reshape(2, 3))
        return
    with pytest.raises(errors.AioInferError) as info:
        _run(path, device)
    error: BaseException = info.value
    if isinstance(error, errors.SubgraphCompileError):  # HETERO names the subgraph, then why
        assert error.device == "NUMPY" and error.subgraph is not None
        error = error.__cause__  # type: ignore[assignment]
    assert isinstance(error, getattr(errors, kind)), repr(error)
    assert text in str(error), str(error)
    assert len(str(info.value)) < 2000


def test_external_data_through_a_symlink_out_of_the_folder_is_refused(
        tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(np.arange(6, dtype=np.float32).tobytes())
    os.symlink(tmp_path / "secret.bin", folder / "y.bin")
    (folder / "model.onnx").write_bytes(
        (CORPUS / "models" / "external_ok" / "model.onnx").read_bytes())
    with pytest.raises(errors.InvalidModelError, match="outside the model's folder"):
        aioinfer.Core().read_model(str(folder / "model.onnx"))


def test_external_data_in_a_model_given_as_bytes_is_refused() -> None:
    data = (CORPUS / "models" / "external_ok" / "model.onnx").read_bytes()
    with pytest.raises(errors.InvalidModelError, match="read the model from its path"):
        aioinfer.Core().read_model(data)


def test_the_corpus_is_what_its_generator_writes(tmp_path: pathlib.Path) -> None:
    """Every case the generator makes is in the repository, byte for byte."""
    script = CORPUS / "make_corpus.py"
    copy = tmp_path / "corpus"
    copy.mkdir()
    (copy / "make_corpus.py").write_text(script.read_text())
    subprocess.run([sys.executable, str(copy / "make_corpus.py")], check=True, timeout=120)
    made = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")
                  if p.is_file() and p.suffix in (".onnx", ".bin", ".json"))
    kept = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*")
                  if p.is_file() and p.suffix in (".onnx", ".bin", ".json"))
    assert made == kept
    for rel in made:
        assert (copy / rel).read_bytes() == (CORPUS / rel).read_bytes(), rel
