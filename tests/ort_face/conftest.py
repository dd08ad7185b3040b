"""Fixtures of the onnxruntime-face tests: real models from ``aioinfer.models`` saved to disk,
the real onnxruntime as the oracle, and a Core per test (so plugin registrations and device
settings do not leak between tests)."""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
import onnxruntime
import pytest

import aioinfer
from aioinfer import models


def small(name: str) -> onnx.ModelProto:
    """Small builds of the built-in models (fast to compile and run)."""
    kw: dict[str, object] = {
        "cnn": {"image_size": 32, "batch": "N"},
        "mlp": {"batch": "batch", "sizes": (32, 64, 10)},
        "bert": {"hidden": 32, "layers": 1, "heads": 2, "seq": 8},
        "gpt2": {"hidden": 32, "layers": 1, "heads": 2, "seq": 8, "past": 4},
        "cnn-qdq": {"image_size": 32},
    }.get(name, {})
    return models.get(name, **kw)


def feeds_for(proto: onnx.ModelProto, batch: int = 2) -> dict[str, np.ndarray]:
    feeds = models.example_inputs(proto)
    out = {}
    for name, value in feeds.items():
        info = next(i for i in proto.graph.input if i.name == name)
        dims = info.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:  # a named batch: feed a batch of ``batch``
            value = np.concatenate([value] * batch, axis=0)
        out[name] = value
    return out


def oracle(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = onnxruntime.InferenceSession(proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, feeds)  # type: ignore[no-any-return]


@pytest.fixture
def core() -> aioinfer.Core:
    return aioinfer.Core()


@pytest.fixture
def cnn_path(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "cnn.onnx"
    onnx.save(small("cnn"), path)
    return path
