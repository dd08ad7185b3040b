"""A plugin EP library for the tests that prefers NHWC: it claims 1x1 Convs (stride 1, no
pads, one group), GlobalAveragePool, Relu and Add, and computes Conv and GlobalAveragePool in
the layout the adapter hands it: ``com.ms.internal.nhwc`` nodes on NHWC data, standard
nodes on NCHW data. EP option ``convert``: ``default`` (answer ``None``), ``no`` (answer
``False``: keep NCHW), ``resize`` (answer ``True`` for everything, and claim Resize too)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from aioinfer.model import Model
from aioinfer.ort.ep.api import (
    Ep,
    EpApi,
    EpDevice,
    EpFactory,
    GraphSupportInfo,
    HardwareDevice,
    NodeComputeContext,
    OrtEpDataLayout,
    OrtHardwareDeviceType,
)
from aioinfer.ort.ep.layout import NHWC_DOMAIN

SEEN: list[tuple[str, str, list[int]]] = []  # (op_type, domain, input 0 shape) per compiled node
ASKED: list[tuple[str, str]] = []


class Compute:
    def __init__(self, model: Model) -> None:
        graph = model.proto.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.inputs = [i.name for i in graph.input if i.name not in self.consts]
        self.outputs = [o.name for o in graph.output]
        self.nodes = list(graph.node)
        for node in self.nodes:
            kind = model.value_type(node.input[0])
            shape = [d.dim_value for d in kind.tensor_type.shape.dim] if kind is not None \
                and kind.HasField("tensor_type") else []
            SEEN.append((node.op_type, node.domain, shape))

    def create_state(self, context: NodeComputeContext) -> Any:
        return None

    def compute(self, state: Any, inputs: Sequence[Any]) -> list[Any]:
        values = dict(self.consts)
        values.update(zip(self.inputs, inputs, strict=True))
        for node in self.nodes:
            x = values[node.input[0]]
            nhwc = node.domain == NHWC_DOMAIN
            if node.op_type == "Conv":
                w = values[node.input[1]][:, :, 0, 0]  # [M, C]: ONNX's weights, either layout
                b = values[node.input[2]] if len(node.input) > 2 else np.float32(0)
                if nhwc:
                    y = x @ w.T + b
                else:
                    y = np.einsum("nchw,mc->nmhw", x, w) + np.reshape(b, (1, -1, 1, 1))
            elif node.op_type == "GlobalAveragePool":
                y = x.mean(axis=(1, 2) if nhwc else (2, 3), keepdims=True)
            elif node.op_type == "Relu":
                y = np.maximum(x, 0)
            elif node.op_type == "Add":
                y = x + values[node.input[1]]
            else:
                raise NotImplementedError(node.op_type)
            values[node.output[0]] = y.astype(np.float32)
        return [values[o] for o in self.outputs]

    def release_state(self, state: Any) -> None:
        pass


class NhwcEp(Ep):
    def __init__(self, convert: str) -> None:
        self.convert = convert

    def get_capability(self, graph: onnx.GraphProto, info: GraphSupportInfo,
                       model: Model) -> None:
        ops = {"Conv", "GlobalAveragePool", "Relu", "Add"} | (
            {"Resize"} if self.convert == "resize" else set())
        mine = [n for n in graph.node if n.op_type in ops and (
            n.op_type != "Conv" or _one_by_one(n, graph))]
        if mine:
            info.add_nodes_to_fuse(mine)

    def compile(self, graphs: Sequence[Model], fused_nodes: Sequence[onnx.NodeProto]
                ) -> list[Compute]:
        return [Compute(g) for g in graphs]

    def get_preferred_data_layout(self) -> OrtEpDataLayout:
        return OrtEpDataLayout.NHWC

    def should_convert_data_layout_for_op(self, domain: str, op_type: str,
                                          target: OrtEpDataLayout) -> bool | None:
        ASKED.append((domain, op_type))
        return {"default": None, "no": False, "resize": True}[self.convert]


def _one_by_one(node: onnx.NodeProto, graph: onnx.GraphProto) -> bool:
    weights = {t.name: t for t in graph.initializer}.get(node.input[1])
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return (weights is not None and list(weights.dims[2:]) == [1, 1]
            and attrs.get("group", 1) == 1 and not any(attrs.get("pads", []))
            and all(s == 1 for s in attrs.get("strides", [1, 1])))


class NhwcFactory(EpFactory):
    def __init__(self, registration_name: str, api: EpApi) -> None:
        super().__init__(registration_name)
        self.api = api

    def get_supported_devices(self, devices: Sequence[HardwareDevice]) -> list[EpDevice]:
        return [self.api.create_ep_device(self, d) for d in devices
                if d.type == OrtHardwareDeviceType.CPU]

    def create_ep(self, devices: Sequence[EpDevice], session_options: Mapping[str, str]
                  ) -> NhwcEp:
        return NhwcEp(session_options.get("convert", "default"))


def create_ep_factories(registration_name: str, api: EpApi, max_factories: int
                        ) -> list[NhwcFactory]:
    return [NhwcFactory(registration_name, api)][:max_factories]


def release_ep_factory(factory: NhwcFactory) -> None:
    pass
