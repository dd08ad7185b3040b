"""Helpers to build one-node (or small) ONNX models and run them here and on onnxruntime."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper

from aioinfer.plugins.numpy.compiler import compile_graph
from aioinfer.plugins.numpy.kernels import jit
from aioinfer.plugins.numpy.plan import Plan


def value_info(name: str, array: np.ndarray | None, elem: int | None = None):
    """A ValueInfoProto for ``array`` (or an untyped-shape one of element type ``elem``)."""
    if array is None:
        return helper.make_tensor_value_info(name, elem or onnx.TensorProto.FLOAT, None)
    return helper.make_tensor_value_info(
        name, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape
    )


def make_model(
    nodes: Sequence[onnx.NodeProto], inputs: dict[str, np.ndarray], outputs: Sequence[str],
    opset: int = 21, functions: Sequence[onnx.FunctionProto] = (),
    extra_opsets: dict[str, int] | None = None, input_shapes: dict | None = None,
) -> onnx.ModelProto:
    """A model over ``nodes``; outputs are declared without type so any result is accepted."""
    ins = []
    for name, arr in inputs.items():
        elem = helper.np_dtype_to_tensor_dtype(arr.dtype)
        shape = (input_shapes or {}).get(name, arr.shape)
        ins.append(helper.make_tensor_value_info(name, elem, shape))
    outs = [helper.make_value_info(name, onnx.TypeProto()) for name in outputs]
    graph = helper.make_graph(list(nodes), "g", ins, outs)
    opsets = [helper.make_opsetid("", opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in (extra_opsets or {}).items()]
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions),
                             ir_version=10)


def one_node_model(op: str, inputs: dict, n_out: int = 1, opset: int = 21,
                   **attrs) -> onnx.ModelProto:
    """A model of one ``op`` node over ``inputs`` (name -> example array), outputs y0, y1..."""
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, list(inputs), outs, **attrs)
    return make_model([node], inputs, outs, opset=opset)


def compile_model(model: onnx.ModelProto) -> Plan:
    """The model's plan, with the compiled tier's kernels unless ``AIOINFER_JIT=0`` (the
    ``tier`` fixture sets it) or numba is missing."""
    opsets = {o.domain: o.version for o in model.opset_import}
    return jit.specialise(compile_graph(model.graph, opsets, functions=model.functions))


def run_ours(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list:
    return compile_model(model).run(list(inputs.values()))


def run_ort(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list:
    import onnxruntime

    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, inputs)


def assert_matches_ort(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list:
    """Run ``model`` on both engines; outputs must agree in dtype, shape and values."""
    ours, theirs = run_ours(model, inputs), run_ort(model, inputs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        a = np.asarray(a)
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        assert a.shape == b.shape, (a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    return ours
