"""The ONNX backend interface (``onnx.backend.base.Backend``) over :class:`aioinfer.Core`.

>>> import aioinfer.backend as backend
>>> rep = backend.prepare(model, device="NUMPY")      # doctest: +SKIP
>>> outputs = rep.run([x])                            # doctest: +SKIP

Any Core device string works (``CPU``, ``NUMPY``, ``TEMPLATE``, ...); ONNX's generic ``CUDA``
maps to ``GPU``. Extra keyword arguments to :func:`prepare` are compile-time properties.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep

from .core import Core
from .errors import AioInferError, InvalidModelError
from .model import Model
from .plugins.base import CompiledModel

_DEVICE_ALIASES = {"CUDA": "GPU"}


@functools.cache
def _core() -> Core:
    return Core()


def _device(device: str) -> str:
    name = str(device).upper()
    return _DEVICE_ALIASES.get(name, name)


class AioInferRep(BackendRep):
    """A prepared (compiled) model; ``run`` returns the outputs as a named tuple."""

    def __init__(self, compiled: CompiledModel) -> None:
        self.compiled = compiled
        self._request = compiled.create_infer_request()
        names = [p.name for p in compiled.outputs]
        safe = [n if n.isidentifier() and not n.startswith("_") else f"output_{k}"
                for k, n in enumerate(names)]
        self._tuple = namedtuple("Outputs", safe, rename=True)  # type: ignore[misc]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        results = self._request.infer(_inputs(inputs))
        return self._tuple(*results.to_list())


def _inputs(inputs: Any) -> Any:
    if isinstance(inputs, np.ndarray) or isinstance(inputs, Mapping):
        return inputs
    if isinstance(inputs, Sequence) and not isinstance(inputs, (str, bytes)):
        return list(inputs)
    return inputs


class AioInferBackend(Backend):
    """``onnx.backend.base.Backend`` implementation running on aioinfer devices."""

    @classmethod
    def prepare(
        cls, model: onnx.ModelProto | Model | bytes | str, device: str = "CPU", **kwargs: Any
    ) -> AioInferRep:
        core = _core()
        compiled = core.compile_model(core.read_model(model) if not isinstance(model, Model)
                                      else model, _device(device), kwargs)
        return AioInferRep(compiled)

    @classmethod
    def run_model(
        cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any
    ) -> tuple[Any, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Any,
        device: str = "CPU",
        outputs_info: Sequence[tuple[Any, Any]] | None = None,
        **kwargs: Any,
    ) -> tuple[Any, ...]:
        opset = kwargs.pop("opset_version", onnx.defs.onnx_opset_version())
        values = list(inputs.values()) if isinstance(inputs, Mapping) else list(inputs)
        names = [n for n in node.input if n]
        graph_inputs = [
            helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype), np.shape(v)
            )
            for name, v in zip(names, values, strict=True)
        ]
        graph_outputs = [helper.make_empty_tensor_value_info(o) for o in node.output if o]
        graph = helper.make_graph([node], "run_node", graph_inputs, graph_outputs)
        domain_opsets = [helper.make_opsetid("", opset)]
        if node.domain and node.domain != "ai.onnx":
            domain_opsets.append(helper.make_opsetid(node.domain, 1))
        model = helper.make_model(graph, opset_imports=domain_opsets)
        try:  # give the outputs their types, as a model file would have them
            model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        except onnx.shape_inference.InferenceError as exc:
            raise InvalidModelError(f"run_node: {node.op_type} node is not valid: {exc}") from exc
        return cls.run_model(model, values, device, **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            shown, hidden = _core()._devices()  # NUMPY behind the CPU proxy counts too
            return _device(device) in (*shown, *hidden)
        except AioInferError:
            return False


prepare = AioInferBackend.prepare
run_model = AioInferBackend.run_model
run_node = AioInferBackend.run_node
supports_device = AioInferBackend.supports_device
