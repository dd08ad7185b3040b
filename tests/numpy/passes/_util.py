"""Build small real models, compile them with and without the graph passes, run both."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from aioinfer.plugins.numpy.compiler import compile_graph
from aioinfer.plugins.numpy.kernels import jit
from aioinfer.plugins.numpy.plan import Plan


def model(nodes: Sequence[onnx.NodeProto], inputs: dict[str, np.ndarray], outputs: Sequence[str],
          initializers: dict[str, np.ndarray] | None = None, opset: int = 17,
          float_outputs: bool = False) -> onnx.ModelProto:
    """A model over ``nodes`` with typed inputs and ``initializers``; outputs are untyped, or
    float (4, 4) tensors (``float_outputs``, for the ONNX checker)."""
    ins = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in inputs.items()]
    outs = [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [4, 4]) if float_outputs
            else helper.make_value_info(name, onnx.TypeProto()) for name in outputs]
    inits = [numpy_helper.from_array(v, k) for k, v in (initializers or {}).items()]
    graph = helper.make_graph(list(nodes), "g", ins, outs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=8)


def plan(m: onnx.ModelProto, optimize: bool = True) -> Plan:
    """The plan, with the compiled tier's kernels unless ``AIOINFER_JIT=0`` or numba is
    missing (the ``tier`` fixture chooses in the kernel tests)."""
    opsets = {o.domain: o.version for o in m.opset_import}
    return jit.specialise(compile_graph(m.graph, opsets, optimize=optimize))


def ops(p: Plan) -> list[str]:
    return [s.op_type for s in p.steps]


def check(m: onnx.ModelProto, inputs: dict[str, np.ndarray], rtol: float = 1e-5,
          atol: float = 1e-5) -> Plan:
    """Compile with the passes; outputs must match the unoptimised plan and onnxruntime."""
    optimized = plan(m)
    got = optimized.run(list(inputs.values()))
    plain = plan(m, optimize=False).run(list(inputs.values()))
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = session.run(None, inputs)
    for g, p, w in zip(got, plain, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, p, rtol=rtol, atol=atol)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return optimized
