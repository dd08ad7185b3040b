"""PrePostProcessor: pre- and post-processing added to a model's graph (OpenVINO's
``ov::preprocess::PrePostProcessor``, ``pre_post_process.cpp``).

``build()`` rewrites the graph, as OpenVINO does: each input configured here becomes a new
graph input of the tensor's element type, layout and shape, followed by the steps as ONNX
nodes (:mod:`.steps`) ending in the value the model read before; each configured output gets
its steps after the model's value. The result is a new :class:`~aioinfer.Model`, so the steps
compile into the device's plan with the rest of the graph (NUMPY folds their constants, and
HETERO places them like any node) and run inside the request, not in Python per frame.

After the user's steps, ``build()`` adds what is still needed to reach the model: a ``Cast``
to the model's element type and a ``Transpose`` to the model's layout. One reordering is made
for speed: per-channel steps (color conversion, ``reverse_channels``, ``mean``, ``scale``)
written just before a ``resize`` are moved after it, where there are fewer pixels to touch,
and the implicit layout conversion goes just before the first ``resize`` (a ``Transpose`` is
a view; the resize then writes its result contiguous in the model's layout, which the first
convolution needs to be fast). That is exact for the channel and layout steps and equal up
to float rounding (a few ulp) for ``mean``/``scale``, since resize weights sum to one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import onnx
from onnx import helper

from ..errors import PreprocessError
from ..model import Dim, Model, load_model
from ..tensor import element_type
from . import steps as S
from .formats import ColorFormat, ResizeAlgorithm
from .layout import Layout

_PER_CHANNEL = {"convert_color", "reverse_channels", "mean", "scale"}


class TensorInfo:
    """What the user feeds (an input) or receives (an output)."""

    def __init__(self) -> None:
        self.element_type: np.dtype | None = None
        self.layout: Layout | None = None
        self.color: ColorFormat | None = None
        self.shape: list[Dim] | None = None
        self.spatial: tuple[int, int] | None | str = None  # (h, w), "dynamic", or None

    def set_element_type(self, dtype: Any) -> TensorInfo:
        self.element_type = element_type(dtype)
        return self

    def set_layout(self, layout: str | Layout) -> TensorInfo:
        self.layout = Layout(layout)
        return self

    def set_color_format(self, color: ColorFormat, sub_names: Sequence[str] = ()) -> TensorInfo:
        if sub_names:
            raise PreprocessError(f"set_color_format({color.name}, sub_names): multi-plane "
                                  "inputs are not supported")
        self.color = color
        return self

    def set_shape(self, shape: Sequence[Dim]) -> TensorInfo:
        self.shape = [None if (isinstance(d, int) and d < 0) else d for d in shape]
        return self

    def set_spatial_dynamic_shape(self) -> TensorInfo:
        """Frames of any height and width (``resize`` brings them to the model's)."""
        self.spatial = "dynamic"
        return self

    def set_spatial_static_shape(self, height: int, width: int) -> TensorInfo:
        self.spatial = (int(height), int(width))
        return self


class ModelInfo:
    """What the model itself expects (its layout; its element type and shape are read)."""

    def __init__(self) -> None:
        self.layout: Layout | None = None

    def set_layout(self, layout: str | Layout) -> ModelInfo:
        self.layout = Layout(layout)
        return self


class Steps:
    """An ordered list of steps (``preprocess()`` of an input, ``postprocess()`` of an
    output); each method returns the list, to chain calls."""

    _allowed: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self.steps: list[tuple[str, tuple[Any, ...]]] = []

    def _add(self, kind: str, *args: Any) -> Self:
        if kind not in self._allowed:
            raise PreprocessError(f"{kind} is not a {type(self).__name__} step")
        self.steps.append((kind, args))
        return self

    def convert_element_type(self, dtype: Any = None) -> Self:
        """Cast to ``dtype`` (``None``: the model's element type)."""
        return self._add("convert_element_type", None if dtype is None else element_type(dtype))

    def convert_layout(self, layout: str | Layout | Sequence[int] | None = None) -> Self:
        """Transpose to ``layout`` (a layout, or a permutation; ``None``: the model's)."""
        target = layout if layout is None or isinstance(layout, (list, tuple)) else Layout(
            layout)  # type: ignore[arg-type]
        return self._add("convert_layout", target)


class PreProcessSteps(Steps):
    """Steps from the user's tensor to the model's input."""

    _allowed = frozenset({"convert_element_type", "convert_layout", "convert_color",
                          "reverse_channels", "mean", "scale", "resize", "crop"})

    def convert_color(self, color: ColorFormat) -> PreProcessSteps:
        self._add("convert_color", color)
        return self

    def reverse_channels(self) -> PreProcessSteps:
        self._add("reverse_channels")
        return self

    def mean(self, values: float | Sequence[float] | np.ndarray) -> PreProcessSteps:
        """Subtract one value, or one per channel."""
        self._add("mean", np.atleast_1d(np.asarray(values, np.float64)))
        return self

    def scale(self, values: float | Sequence[float] | np.ndarray) -> PreProcessSteps:
        """Divide by one value, or one per channel."""
        self._add("scale", np.atleast_1d(np.asarray(values, np.float64)))
        return self

    def resize(self, algorithm: ResizeAlgorithm, height: int | None = None,
               width: int | None = None) -> PreProcessSteps:
        """Resize to ``height`` x ``width`` (default: the model's spatial size)."""
        if (height is None) != (width is None):
            raise PreprocessError("resize: give both height and width, or neither")
        self._add("resize", ResizeAlgorithm(algorithm), height, width)
        return self

    def crop(self, begin: Sequence[int], end: Sequence[int]) -> PreProcessSteps:
        """Keep ``[begin, end)`` along every axis (negative ends count from the end)."""
        self._add("crop", list(begin), list(end))
        return self


class PostProcessSteps(Steps):
    """Steps from the model's output to what the user receives."""

    _allowed = frozenset({"convert_element_type", "convert_layout"})


class InputInfo:
    """One input's configuration: ``tensor()``, ``preprocess()``, ``model()``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tensor = TensorInfo()
        self._steps = PreProcessSteps()
        self._model = ModelInfo()

    def tensor(self) -> TensorInfo:
        return self._tensor

    def preprocess(self) -> PreProcessSteps:
        return self._steps

    def model(self) -> ModelInfo:
        return self._model


class OutputInfo:
    """One output's configuration: ``model()``, ``postprocess()``, ``tensor()``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._tensor = TensorInfo()
        self._steps = PostProcessSteps()
        self._model = ModelInfo()

    def tensor(self) -> TensorInfo:
        return self._tensor

    def postprocess(self) -> PostProcessSteps:
        return self._steps

    def model(self) -> ModelInfo:
        return self._model


class PrePostProcessor:
    """Pre- and post-processing for ``model``, added to its graph by :meth:`build`::

        ppp = PrePostProcessor(model)
        ppp.input().tensor().set_element_type("u8").set_layout("NHWC") \\
            .set_color_format(ColorFormat.BGR).set_spatial_dynamic_shape()
        ppp.input().preprocess().convert_element_type("f32") \\
            .convert_color(ColorFormat.RGB).resize(ResizeAlgorithm.LINEAR) \\
            .mean([123.675, 116.28, 103.53]).scale([58.395, 57.12, 57.375])
        ppp.input().model().set_layout("NCHW")
        model = ppp.build()
    """

    def __init__(self, model: Model) -> None:
        self._source = model
        self._inputs: dict[str, InputInfo] = {}
        self._outputs: dict[str, OutputInfo] = {}

    def input(self, key: int | str | None = None) -> InputInfo:
        """The configuration of one model input (by name or index; ``None``: the only one)."""
        name = self._source.input(key).name
        return self._inputs.setdefault(name, InputInfo(name))

    def output(self, key: int | str | None = None) -> OutputInfo:
        name = self._source.output(key).name
        return self._outputs.setdefault(name, OutputInfo(name))

    def build(self) -> Model:
        """A new model with the steps in its graph (the model given is not changed)."""
        proto = onnx.ModelProto()
        proto.CopyFrom(self._source.proto)
        opset = self._source.opsets.get("", 0)
        if (self._inputs or self._outputs) and opset < 11:
            raise PreprocessError(f"PrePostProcessor needs ONNX opset 11 or newer, the model "
                                  f"has {opset}")
        graph = proto.graph
        for given in self._inputs.values():
            _build_input(graph, self._source, given, opset)
        for wanted in self._outputs.values():
            _build_output(graph, self._source, wanted, opset)
        return load_model(proto)


# -- inputs -------------------------------------------------------------------------------------
def _build_input(graph: onnx.GraphProto, model: Model, info: InputInfo, opset: int) -> None:
    port = model.input(info.name)
    tensor = info._tensor
    model_layout = info._model.layout or tensor.layout
    tensor_layout = tensor.layout or model_layout
    if port.element_type is None or port.shape is None:
        raise PreprocessError(f"{port.name}: the model input's element type and rank must be "
                              "known", port=port.name)
    for layout in (model_layout, tensor_layout):
        if layout is not None and layout.rank != port.rank:
            raise PreprocessError(f"{port.name}: layout {layout} does not fit the input's "
                                  f"rank {port.rank}", port=port.name)
    shape = _tensor_shape(port.name, list(port.shape), model_layout, tensor_layout, tensor)
    dtype = tensor.element_type or port.element_type
    internal = f"{port.name}/model"
    if any(out.name == port.name for out in graph.output):
        raise PreprocessError(f"{port.name}: an input that is also a graph output cannot be "
                              "preprocessed", port=port.name)
    _rename_reads(graph, port.name, internal)
    chain = S.Chain(port.name, port.name, dtype, port.rank or 0, tensor_layout, tensor.color,
                    opset)
    model_hw = _spatial(port.name, list(port.shape), model_layout)
    steps = _ordered(info._steps.steps, tensor_layout != model_layout)
    for kind, args in steps:
        _apply(chain, kind, args, port.element_type, model_layout, model_hw)
    S.convert_element_type(chain, port.element_type)
    if model_layout is not None and chain.layout is not None and chain.layout != model_layout:
        S.convert_layout(chain, model_layout)
    if chain.value == port.name:  # no step at all: the graph input stays as it was
        _rename_reads(graph, internal, port.name)
        return
    chain.nodes[-1].output[0] = internal
    for index, value in enumerate(graph.input):
        if value.name == port.name:
            graph.input[index].CopyFrom(helper.make_tensor_value_info(
                port.name, helper.np_dtype_to_tensor_dtype(dtype), shape))
    position = 0
    for node in chain.nodes:
        graph.node.insert(position, node)
        position += 1
    graph.initializer.extend(chain.initializers)


def _apply(chain: S.Chain, kind: str, args: tuple[Any, ...], model_dtype: np.dtype,
           model_layout: Layout | None, model_hw: tuple[int, int] | None) -> None:
    if kind == "convert_element_type":
        S.convert_element_type(chain, args[0] if args[0] is not None else model_dtype)
    elif kind == "convert_layout":
        target = args[0] if args[0] is not None else model_layout
        if target is None:
            raise chain.fail("convert_layout() needs the model's layout: set "
                             "model().set_layout(...)")
        S.convert_layout(chain, target)
    elif kind == "convert_color":
        S.convert_color(chain, args[0])
    elif kind == "reverse_channels":
        S.reverse_channels(chain)
    elif kind == "mean":
        S.mean(chain, args[0])
    elif kind == "scale":
        S.scale(chain, args[0])
    elif kind == "crop":
        S.crop(chain, args[0], args[1])
    elif kind == "resize":
        algorithm, height, width = args
        if height is None:
            if model_hw is None:
                raise chain.fail("resize() to the model's size needs the model's layout "
                                 "(model().set_layout) and static H and W")
            height, width = model_hw
        S.resize(chain, algorithm, height, width)


def _ordered(steps: list[tuple[str, tuple[Any, ...]]], relayout: bool
             ) -> list[tuple[str, tuple[Any, ...]]]:
    """Per-channel steps just before a resize moved after it (fewer pixels); the layout
    conversion to the model's, if the user wrote none, just before the first resize (the
    Transpose is a view there, and the resize writes its result in the model's order)."""
    out = list(steps)
    for index in range(len(out)):
        if out[index][0] != "resize":
            continue
        k = index
        while k > 0 and out[k - 1][0] in _PER_CHANNEL:
            out[k - 1], out[k] = out[k], out[k - 1]
            k -= 1
    kinds = [kind for kind, _ in out]
    if relayout and "resize" in kinds and "convert_layout" not in kinds:
        out.insert(kinds.index("resize"), ("convert_layout", (None,)))
    return out


def _spatial(name: str, shape: list[Dim], layout: Layout | None) -> tuple[int, int] | None:
    if layout is None or not (layout.has("H") and layout.has("W")):
        return None
    h, w = shape[layout.index("H")], shape[layout.index("W")]
    return (h, w) if isinstance(h, int) and isinstance(w, int) else None


def _tensor_shape(name: str, model_shape: list[Dim], model_layout: Layout | None,
                  tensor_layout: Layout | None, tensor: TensorInfo) -> list[Dim]:
    if tensor.shape is not None:
        return list(tensor.shape)
    shape = list(model_shape)
    if model_layout is not None and tensor_layout is not None:
        perm = model_layout.permutation_to(tensor_layout)
        shape = [model_shape[p] for p in perm]
    if tensor.spatial is not None:
        if tensor_layout is None:
            raise PreprocessError(f"{name}: a spatial shape needs the tensor's layout",
                                  port=name)
        h, w = tensor_layout.index("H", "a spatial shape"), tensor_layout.index("W")
        dims = (None, None) if tensor.spatial == "dynamic" else tensor.spatial
        shape[h], shape[w] = dims[0], dims[1]
    if tensor.color is not None and tensor.color.channels and tensor_layout is not None \
            and tensor_layout.has("C"):
        shape[tensor_layout.index("C")] = tensor.color.channels
    return shape


# -- outputs ------------------------------------------------------------------------------------
def _build_output(graph: onnx.GraphProto, model: Model, info: OutputInfo, opset: int) -> None:
    port = model.output(info.name)
    if port.element_type is None or port.shape is None:
        raise PreprocessError(f"{port.name}: the model output's element type and rank must be "
                              "known", port=port.name)
    model_layout = info._model.layout or info._tensor.layout
    internal = f"{port.name}/model"
    chain = S.Chain(port.name, internal, port.element_type, port.rank or 0, model_layout, None,
                    opset)
    for kind, args in info._steps.steps:
        _apply(chain, kind, args, port.element_type, model_layout, None)
    if info._tensor.element_type is not None:
        S.convert_element_type(chain, info._tensor.element_type)
    target = info._tensor.layout
    if target is not None and chain.layout is not None and chain.layout != target:
        S.convert_layout(chain, target)
    if chain.value == internal:
        return
    for node in graph.node:
        node.output[:] = [internal if o == port.name else o for o in node.output]
    _rename_reads(graph, port.name, internal)
    for value in graph.value_info:
        if value.name == port.name:
            value.name = internal
    chain.nodes[-1].output[0] = port.name
    graph.node.extend(chain.nodes)
    graph.initializer.extend(chain.initializers)
    shape: list[Dim] = list(port.shape)
    if model_layout is not None and chain.layout is not None:
        perm = model_layout.permutation_to(chain.layout)
        shape = [port.shape[p] for p in perm]
    for index, value in enumerate(graph.output):
        if value.name == port.name:
            graph.output[index].CopyFrom(helper.make_tensor_value_info(
                port.name, helper.np_dtype_to_tensor_dtype(chain.dtype), shape))


def _rename_reads(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Every read of value ``old`` in ``graph`` and its subgraphs (where not shadowed)."""
    for node in graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else
                        list(attr.graphs) if attr.type == onnx.AttributeProto.GRAPHS else []):
                defined = {i.name for i in sub.input} | {t.name for t in sub.initializer}
                defined |= {o for n in sub.node for o in n.output}
                if old not in defined:
                    _rename_reads(sub, old, new)
                    for out in sub.output:
                        if out.name == old:
                            out.name = new
