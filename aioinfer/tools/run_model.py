"""``aioinfer run``: one inference of a model on given (or seeded random) inputs."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..core import Core
from ..errors import InputError, UnexpectedInputError
from ..runtime.results import Results
from .model_source import apply_shapes, input_data, load_model, parse_shapes


def run_model(model_spec: str, device: str, inputs: Sequence[str] = (),
              shape: str | None = None, seed: int = 0) -> Results:
    """Compile and infer once. ``inputs`` are ``name=file.npy`` items; inputs not given get
    seeded random data."""
    core = Core()
    model = load_model(core, model_spec)
    if shape:
        apply_shapes(model, parse_shapes(shape))
    given = dict(_read_input(item) for item in inputs)
    names = {p.name for p in model.inputs}
    for name in given:
        if name not in names:
            raise UnexpectedInputError(f"--input {name!r}: the model's inputs are "
                                       f"{sorted(names)}", input_name=name)
    if len(given) < len(names):
        model.reshape({k: list(v.shape) for k, v in given.items()})
        feeds = {**input_data(model, seed), **given}
    else:
        feeds = given
    compiled = core.compile_model(model, device)
    return compiled.create_infer_request().infer(feeds)


def _read_input(item: str) -> tuple[str, np.ndarray]:
    name, sep, path = item.partition("=")
    if not sep or not name:
        raise InputError(f"--input {item!r}: expected name=file.npy")
    if not os.path.isfile(path):
        raise InputError(f"--input {name}: file {path!r} does not exist", input_name=name)
    return name, np.load(path, allow_pickle=False)


def format_results(results: Results, values: int = 8) -> str:
    """Each output's shape, dtype and first values (and top-5 for a 2-D float output)."""
    lines = []
    for name in results:
        value = np.asarray(results[name])
        flat = value.reshape(-1)[:values]
        lines.append(f"{name}: {value.dtype}{list(value.shape)} "
                     f"{np.array2string(flat, precision=5, separator=', ')}"
                     + (" ..." if value.size > values else ""))
        if value.ndim == 2 and value.dtype.kind == "f" and value.shape[1] > 5:
            top = np.argsort(-value[0])[:5]
            lines.append(f"  top-5 of row 0: {top.tolist()}")
    return "\n".join(lines)
