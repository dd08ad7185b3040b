"""Which devices AUTO may use for a model, best first (OpenVINO's ``select_device``).

The candidates are the listed devices (``AUTO:A,B``) in that order, or, with no list, every
available device ranked GPU > other accelerators > CPU. A candidate is kept when its
``query_model`` covers the whole model and, if it lists ``OPTIMIZATION_CAPABILITIES``, they
include the model's precision (FP32, FP16 or BF16, from its float inputs and weights).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from onnx import TensorProto

from ... import properties as P
from ...errors import AioInferError
from ...model import Model
from ..base import Plugin

_PRECISION = {TensorProto.FLOAT: "FP32", TensorProto.FLOAT16: "FP16",
              TensorProto.BFLOAT16: "BF16"}


def model_precision(model: Model) -> str | None:
    """FP32/FP16/BF16 from the first float input or initializer (``None``: no floats)."""
    graph = model.proto.graph
    for info in graph.input:
        precision = _PRECISION.get(info.type.tensor_type.elem_type)
        if precision:
            return precision
    for init in graph.initializer:
        precision = _PRECISION.get(init.data_type)
        if precision:
            return precision
    return None


def _rank(device: str) -> int:
    name = device.split(".")[0]
    return 0 if name == "GPU" else (2 if name == "CPU" else 1)


def candidates(plugin: Plugin, model: Model, listed: list[str],
               config_of: Callable[[str], Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """(devices that can run the whole model, best first; why each other one cannot)."""
    core = plugin.get_core()
    devices = listed or sorted(core.available_devices, key=_rank)
    precision = model_precision(model)
    nodes = {node.name for node in model.proto.graph.node}
    kept: list[str] = []
    rejected: list[str] = []
    for device in devices:
        try:
            supported = core.get_property(device, P.SUPPORTED_PROPERTIES)
            if precision and P.OPTIMIZATION_CAPABILITIES in supported:
                capabilities = core.get_property(device, P.OPTIMIZATION_CAPABILITIES)
                if precision not in capabilities:
                    rejected.append(f"{device}: no {precision} ({', '.join(capabilities)})")
                    continue
            missing = nodes - set(core.query_model(model, device, config_of(device)))
        except AioInferError as exc:
            rejected.append(f"{device}: {exc}")
            continue
        if missing:
            rejected.append(f"{device}: cannot run node(s) {', '.join(sorted(missing)[:3])}")
            continue
        kept.append(device)
    return kept, rejected
