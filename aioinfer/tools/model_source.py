"""Resolve a ``-m`` argument (a file or a built-in model name) and a ``-shape`` argument."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

import numpy as np

from .. import models
from ..core import Core
from ..errors import InputShapeError, InvalidModelError
from ..model import Model

_SHAPE = re.compile(r"\s*([^\[\],]*?)\s*\[([^\]]*)\]\s*,?")


def load_model(core: Core, spec: str) -> Model:
    """Read ``spec`` as an ONNX file if it exists, else build the built-in model of that name.

    Built-in names may carry builder arguments: ``cnn:image_size=64,batch=2``.
    """
    if os.path.exists(spec):
        return core.read_model(spec)
    name, _, args = spec.partition(":")
    if name.lower() not in models.MODELS:
        raise InvalidModelError(
            f"model {spec!r} is neither a file nor a built-in model; built-in models: "
            f"{', '.join(sorted(models.MODELS))}", path=spec)
    try:
        kwargs = _builder_args(args)
        proto = models.get(name, **kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidModelError(f"built-in model {spec!r}: {exc}", path=spec) from exc
    return core.read_model(proto)


def _builder_args(text: str) -> dict[str, object]:
    kwargs: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in re.split(r",(?![^(]*\))", text))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"builder argument {item!r} is not key=value")
        kwargs[key.strip()] = _literal(value.strip())
    return kwargs


def _literal(text: str) -> object:
    if text.startswith("(") and text.endswith(")"):
        return tuple(int(v) for v in text[1:-1].split(",") if v.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_shapes(text: str) -> dict[str | None, list[int]]:
    """``"input[1,3,224,224]"`` or ``"a[1,8],b[1,8]"``; a shape without a name (``"[1,8]"``)
    applies to every input (key ``None``)."""
    shapes: dict[str | None, list[int]] = {}
    pos = 0
    while pos < len(text):
        match = _SHAPE.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot parse shape {text!r}: expected name[d0,d1,...]")
        name, dims = match.group(1) or None, match.group(2)
        try:
            shapes[name] = [int(d) for d in dims.split(",") if d.strip()]
        except ValueError:
            raise ValueError(f"shape {text!r}: dimensions must be integers") from None
        pos = match.end()
    if not shapes:
        raise ValueError(f"cannot parse shape {text!r}: expected name[d0,d1,...]")
    return shapes


def apply_shapes(model: Model, shapes: Mapping[str | None, Sequence[int]]) -> None:
    """Reshape ``model``'s inputs (``None`` key: every input)."""
    if None in shapes:
        everywhere = shapes[None]
        model.reshape({p.name: list(everywhere) for p in model.inputs})
    named = {k: list(v) for k, v in shapes.items() if k is not None}
    if named:
        model.reshape(named)  # type: ignore[arg-type]


def input_data(model: Model, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs: static shapes as declared, dynamic ones from the builder's example."""
    static = {p.name: [int(d) for d in p.shape if isinstance(d, int)] for p in model.inputs
              if p.shape is not None and not p.is_dynamic}
    try:
        return models.example_inputs(model.proto, seed=seed, shapes=static)
    except ValueError as exc:
        raise InputShapeError(f"{exc} with -shape, e.g. -shape name[1,3,224,224]") from exc
