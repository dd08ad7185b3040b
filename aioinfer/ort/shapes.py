"""``reshape_input``, ``layout`` and ``disable_dynamic_shapes`` of the OpenVINO EP.

- ``reshape_input`` (``data[1,3,60,80..120]``) sets static dimensions on the model before it
  compiles and keeps bounded ones dynamic; every run checks the bounds and a size outside them
  raises :class:`~aioinfer.errors.InputShapeError` naming the input, the axis and the bound.
- ``layout`` (``data_0[NCHW],prob_1[NC]``) names each dimension of an input or output; it is
  checked against the model (the port exists, one letter per dimension) and reported by
  :meth:`ShapePolicy.layout_of`.
- ``disable_dynamic_shapes`` compiles a static-shape copy of a dynamic model for each input
  shape it meets (OpenVINO's static reshape), up to :data:`MAX_STATIC_MODELS` of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputShapeError, InvalidPropertyValueError
from ..model import Model
from .openvino_ep import PROVIDER, Bound

MAX_STATIC_MODELS = 16


def apply_reshape(model: Model, bounds: Mapping[str, Sequence[Bound]]) -> None:
    """Set ``reshape_input``'s static dims on ``model`` (bounded dims become dynamic)."""
    ports = {p.name: p for p in model.inputs}
    shapes: dict[str | int, list[Any]] = {}
    for name, dims in bounds.items():
        port = ports.get(name)
        if port is None:
            raise InvalidPropertyValueError(
                f"{PROVIDER}: reshape_input names {name!r}, which is not a model input; "
                f"inputs are {list(ports)}", key="reshape_input", device=PROVIDER)
        if port.rank is not None and port.rank != len(dims):
            raise InvalidPropertyValueError(
                f"{PROVIDER}: reshape_input gives {name!r} {len(dims)} dimensions, the input "
                f"has rank {port.rank}", key="reshape_input", device=PROVIDER)
        for axis, (bound, dim) in enumerate(zip(dims, port.shape or [None] * len(dims),
                                                strict=True)):
            if isinstance(dim, int) and not bound.admits(dim):
                raise InvalidPropertyValueError(
                    f"{PROVIDER}: reshape_input bound {bound} of {name!r} axis {axis} excludes "
                    f"the model's static size {dim}", key="reshape_input", device=PROVIDER)
        shapes[name] = [b.lo if b.static else f"{name}_{k}" for k, b in enumerate(dims)]
    if shapes:
        model.reshape(shapes)


def check_layout(model: Model, layouts: Mapping[str, str]) -> None:
    """Each ``layout`` entry names a model input or output and has one letter per dim."""
    ports = {p.name: p for p in [*model.inputs, *model.outputs]}
    for name, letters in layouts.items():
        port = ports.get(name)
        if port is None:
            raise InvalidPropertyValueError(
                f"{PROVIDER}: layout names {name!r}, which is not a model input or output; "
                f"they are {list(ports)}", key="layout", device=PROVIDER)
        if port.rank is not None and port.rank != len(letters):
            raise InvalidPropertyValueError(
                f"{PROVIDER}: layout {letters} of {name!r} has {len(letters)} dimensions, the "
                f"port has rank {port.rank}", key="layout", device=PROVIDER)


class ShapePolicy:
    """The run-time side: bounds checks, static-shape keys, layouts."""

    def __init__(self, bounds: Mapping[str, Sequence[Bound]], layouts: Mapping[str, str],
                 static: bool) -> None:
        self.bounds = {k: list(v) for k, v in bounds.items()}
        self.layouts = dict(layouts)
        self.static = static

    def check(self, feeds: Mapping[str, Any]) -> None:
        """Raise :class:`InputShapeError` if a fed input breaks its ``reshape_input`` bound."""
        for name, dims in self.bounds.items():
            value = feeds.get(name)
            shape = np.shape(value) if value is not None else None
            if shape is None:
                continue
            if len(shape) != len(dims):
                raise InputShapeError(
                    f"input {name!r}: rank {len(shape)} given, reshape_input bounds it to "
                    f"rank {len(dims)} [{','.join(str(d) for d in dims)}]", input_name=name)
            for axis, (size, bound) in enumerate(zip(shape, dims, strict=True)):
                if not bound.admits(int(size)):
                    raise InputShapeError(
                        f"input {name!r}: size {size} on axis {axis} is outside the "
                        f"reshape_input bound {bound} (shape {list(shape)}, bounds "
                        f"[{','.join(str(d) for d in dims)}])", input_name=name)

    def key(self, feeds: Mapping[str, Any]) -> tuple[tuple[int, ...], ...] | None:
        """The input shapes a static compile is keyed on (``None``: not in static mode)."""
        if not self.static:
            return None
        return tuple(tuple(np.shape(v)) for v in feeds.values())

    def layout_of(self, name: str) -> str | None:
        return self.layouts.get(name)


def static_copy(model: Model, feeds: Mapping[str, Any]) -> Model:
    """A copy of ``model`` with every input set to the shape fed to it."""
    copy = model.clone()
    shapes: dict[str | int, list[Any]] = {p.name: list(np.shape(feeds[p.name]))
                                          for p in copy.inputs if p.kind == "tensor"}
    copy.reshape(shapes)
    return copy
