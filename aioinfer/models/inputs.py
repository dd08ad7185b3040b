"""Seeded example inputs for a model, from the shapes its builder recorded (or the model's
static shapes)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import helper

from ._graph import EXAMPLE_INPUTS_KEY


def example_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Input name -> the concrete example shape its builder recorded (may be empty)."""
    for prop in model.metadata_props:
        if prop.key == EXAMPLE_INPUTS_KEY:
            return {k: list(v["shape"]) for k, v in json.loads(prop.value).items()}
    return {}


def example_inputs(
    model: onnx.ModelProto,
    *,
    seed: int = 0,
    shapes: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, np.ndarray]:
    """Seeded random data for every graph input that is not an initializer.

    Shapes come from ``shapes``, else from the builder's recorded example, else from the
    model's static shape (a ``ValueError`` names the input whose shape is unknown). Floats are
    standard normal; integers are uniform in ``[0, high)`` where the builder recorded a
    ``high`` (token ids, masks), else in ``[0, 10)``; booleans are random.
    """
    rng = np.random.default_rng(seed)
    recorded = _recorded(model)
    init = {t.name for t in model.graph.initializer}
    feeds: dict[str, np.ndarray] = {}
    for info in model.graph.input:
        if info.name in init:
            continue
        tensor = info.type.tensor_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        shape = _shape_of(info, shapes, recorded)
        if dtype.kind == "f":
            feeds[info.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind in "iu":
            high = int(recorded.get(info.name, {}).get("high", 10))
            feeds[info.name] = rng.integers(0, high, shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[info.name] = rng.integers(0, 2, shape).astype(bool)
        else:
            raise ValueError(f"example_inputs: input {info.name!r} has element type {dtype}, "
                             "which has no example data")
    return feeds


def _recorded(model: onnx.ModelProto) -> dict[str, dict]:
    for prop in model.metadata_props:
        if prop.key == EXAMPLE_INPUTS_KEY:
            return dict(json.loads(prop.value))
    return {}


def _shape_of(info: onnx.ValueInfoProto, shapes: Mapping[str, Sequence[int]] | None,
              recorded: Mapping[str, dict]) -> list[int]:
    if shapes is not None and info.name in shapes:
        return [int(d) for d in shapes[info.name]]
    if info.name in recorded:
        return [int(d) for d in recorded[info.name]["shape"]]
    dims = info.type.tensor_type.shape.dim
    if all(d.HasField("dim_value") for d in dims):
        return [d.dim_value for d in dims]
    text = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    raise ValueError(f"input {info.name!r} has a dynamic shape {text}: give its shape")
