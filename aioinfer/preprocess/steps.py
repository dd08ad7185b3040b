"""Pre- and post-processing steps, each emitted as standard ONNX nodes.

A chain starts at a value (a new model input, or a model output) and tracks its element type,
layout and color format while each step appends nodes: ``Cast`` for element types,
``Transpose`` for layouts, ``Slice`` (step -1 on the channel axis) for BGR<->RGB and
``reverse_channels``, ``Slice`` for ``crop`` and for dropping an ``X`` channel, ``Resize``
(its ``sizes`` built from ``Shape`` when the spatial dimensions are dynamic) for ``resize``,
``Sub`` and ``Div`` by per-channel constants for ``mean`` and ``scale``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import PreprocessError
from .formats import ColorFormat, ResizeAlgorithm
from .layout import Layout

_INT_MIN = np.iinfo(np.int64).min


@dataclass
class Chain:
    """The value a chain of steps has reached, and what is known about it."""

    port: str
    value: str
    dtype: np.dtype
    rank: int
    layout: Layout | None
    color: ColorFormat | None
    opset: int
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    _count: int = 0

    def fresh(self, what: str) -> str:
        self._count += 1
        return f"{self.port}/ppp/{self._count}_{what}"

    def const(self, what: str, value: np.ndarray) -> str:
        name = self.fresh(what)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def add(self, op_type: str, inputs: Sequence[str], what: str, **attrs: Any) -> str:
        out = self.fresh(what)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        self.value = out
        return out

    def channel_axis(self, what: str) -> int:
        if self.layout is None:
            raise PreprocessError(f"{self.port}: {what} needs a layout with a 'C' axis: set "
                                  "tensor().set_layout(...) or model().set_layout(...)",
                                  port=self.port)
        return self.layout.index("C", what)

    def fail(self, message: str) -> PreprocessError:
        return PreprocessError(f"{self.port}: {message}", port=self.port)


# -- steps --------------------------------------------------------------------------------------
def convert_element_type(chain: Chain, dtype: np.dtype) -> None:
    if dtype != chain.dtype:
        chain.add("Cast", [chain.value], "cast", to=helper.np_dtype_to_tensor_dtype(dtype))
        chain.dtype = dtype


def convert_layout(chain: Chain, target: Layout | Sequence[int]) -> None:
    if isinstance(target, Layout):
        if chain.layout is None:
            raise chain.fail(f"convert_layout({target}) needs the current layout: set "
                             "tensor().set_layout(...)")
        perm = chain.layout.permutation_to(target)
        new_layout: Layout | None = target
    else:
        perm = [int(p) for p in target]
        if sorted(perm) != list(range(chain.rank)):
            raise chain.fail(f"convert_layout({perm}): not a permutation of {chain.rank} axes")
        new_layout = None if chain.layout is None else Layout(
            "[" + ",".join(chain.layout.axes[p] for p in perm) + "]")
    if perm != list(range(chain.rank)):
        chain.add("Transpose", [chain.value], "transpose", perm=perm)
    chain.layout = new_layout


def _reverse_axis(chain: Chain, axis: int) -> None:
    starts = chain.const("starts", np.array([-1], np.int64))
    ends = chain.const("ends", np.array([_INT_MIN], np.int64))
    axes = chain.const("axes", np.array([axis], np.int64))
    steps = chain.const("steps", np.array([-1], np.int64))
    chain.add("Slice", [chain.value, starts, ends, axes, steps], "reverse")


def reverse_channels(chain: Chain) -> None:
    axis = chain.channel_axis("reverse_channels")
    if chain.color is not None and chain.color.channels == 4:
        raise chain.fail(f"reverse_channels of {chain.color.name}: convert_color to RGB or "
                         "BGR first")
    _reverse_axis(chain, axis)
    if chain.color is ColorFormat.RGB:
        chain.color = ColorFormat.BGR
    elif chain.color is ColorFormat.BGR:
        chain.color = ColorFormat.RGB


def convert_color(chain: Chain, target: ColorFormat) -> None:
    source = chain.color
    if source is None or source is ColorFormat.UNDEFINED:
        raise chain.fail(f"convert_color({target.name}) needs the tensor's color format: "
                         "set tensor().set_color_format(...)")
    if source.order is None or target not in (ColorFormat.RGB, ColorFormat.BGR):
        raise chain.fail(f"convert_color {source.name} -> {target.name} is not supported "
                         "(packed RGB, BGR, RGBX, BGRX to RGB or BGR are)")
    axis = chain.channel_axis("convert_color")
    if source.channels == 4:  # drop the X channel
        starts = chain.const("starts", np.array([0], np.int64))
        ends = chain.const("ends", np.array([3], np.int64))
        axes = chain.const("axes", np.array([axis], np.int64))
        chain.add("Slice", [chain.value, starts, ends, axes], "drop_x")
    if source.order != target.order:
        _reverse_axis(chain, axis)
    chain.color = target


def _per_channel(chain: Chain, values: Sequence[float], what: str) -> np.ndarray:
    if chain.dtype.kind != "f":
        raise chain.fail(f"{what} needs a floating-point element type, the tensor is "
                         f"{chain.dtype}: convert_element_type first")
    array = np.asarray(values, dtype=chain.dtype).ravel()
    if array.size == 1:
        return array.reshape(())
    axis = chain.channel_axis(what)
    shape = [1] * chain.rank
    shape[axis] = array.size
    return array.reshape(shape)


def mean(chain: Chain, values: Sequence[float]) -> None:
    chain.add("Sub", [chain.value, chain.const("mean", _per_channel(chain, values, "mean"))],
              "mean")


def scale(chain: Chain, values: Sequence[float]) -> None:
    divisor = _per_channel(chain, values, "scale")
    if np.any(divisor == 0):
        raise chain.fail(f"scale {list(np.ravel(divisor))}: values must not be 0")
    chain.add("Div", [chain.value, chain.const("scale", divisor)], "scale")


def crop(chain: Chain, begin: Sequence[int], end: Sequence[int]) -> None:
    if len(begin) != chain.rank or len(end) != chain.rank:
        raise chain.fail(f"crop({list(begin)}, {list(end)}): give one begin and one end per "
                         f"axis ({chain.rank})")
    starts = chain.const("starts", np.array(begin, np.int64))
    ends = chain.const("ends", np.array(end, np.int64))
    chain.add("Slice", [chain.value, starts, ends], "crop")


def resize(chain: Chain, algorithm: ResizeAlgorithm, height: int, width: int) -> None:
    """Resize H and W; the other sizes are read from the value (``Shape``), which a device
    folds to constants when the shape is static."""
    if chain.layout is None:
        raise chain.fail("resize needs a layout with 'H' and 'W' axes: set "
                         "tensor().set_layout(...)")
    h, w = chain.layout.index("H", "resize"), chain.layout.index("W", "resize")
    source = chain.value
    shape = chain.add("Shape", [source], "shape")
    pieces = []
    for axis in range(chain.rank):
        if axis in (h, w):
            pieces.append(chain.const("size", np.array([height if axis == h else width],
                                                        np.int64)))
        else:
            index = chain.const("axis", np.array([axis], np.int64))
            pieces.append(chain.add("Gather", [shape, index], "dim", axis=0))
    sizes = chain.add("Concat", pieces, "sizes", axis=0)
    chain.value = source
    if chain.opset >= 13:
        roi, scales = "", ""
    else:
        roi = chain.const("roi", np.zeros(0, np.float32))
        scales = chain.const("scales", np.zeros(0, np.float32))
    chain.add("Resize", [chain.value, roi, scales, sizes], "resize", **algorithm.attributes())
