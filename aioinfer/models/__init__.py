"""Real ONNX models built by aioinfer itself (no downloads), with seeded random weights.

Each builder returns an ``onnx.ModelProto`` that passes ``onnx.checker.check_model(
full_check=True)``; the graphs are emitted node by node the way exporters emit them, so they
exercise the same ops as real models::

    >>> from aioinfer import models
    >>> proto = models.get("cnn", image_size=64)
    >>> feeds = models.example_inputs(proto)

``MODELS`` maps a short name to its builder; :func:`get` builds one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx

from .bert import bert_like
from .cnn import cnn
from .gpt2 import gpt2_like
from .inputs import example_inputs, example_shapes
from .mlp import mlp
from .mobilenet import mobilenet_v2
from .qdq import qdq
from .vit import vit_like


def cnn_qdq(**kw: Any) -> onnx.ModelProto:
    """The CNN, QDQ-quantized (see :func:`qdq`)."""
    return qdq(cnn(**kw))


def bert_qdq(**kw: Any) -> onnx.ModelProto:
    """The BERT-like encoder, QDQ-quantized (see :func:`qdq`)."""
    return qdq(bert_like(**kw))


MODELS: dict[str, Callable[..., onnx.ModelProto]] = {
    "cnn": cnn,
    "mlp": mlp,
    "bert": bert_like,
    "gpt2": gpt2_like,
    "mobilenet_v2": mobilenet_v2,
    "vit": vit_like,
    "cnn-qdq": cnn_qdq,
    "bert-qdq": bert_qdq,
}


def get(name: str, **kw: Any) -> onnx.ModelProto:
    """Build the model registered as ``name`` with builder arguments ``kw``."""
    try:
        builder = MODELS[name.lower()]
    except KeyError:
        raise KeyError(f"no built-in model {name!r}; built-in models: "
                       f"{', '.join(sorted(MODELS))}") from None
    return builder(**kw)


__all__ = ["MODELS", "get", "cnn", "mlp", "bert_like", "gpt2_like", "mobilenet_v2", "vit_like",
           "qdq", "cnn_qdq", "bert_qdq", "example_inputs", "example_shapes"]
