"""aioinfer.backend: the onnx Backend interface, as outside users call it."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import aioinfer.backend as backend
from aioinfer import errors

from .models_small import add_relu


def test_is_an_onnx_backend() -> None:
    from onnx.backend.base import Backend

    assert issubclass(backend.AioInferBackend, Backend)


@pytest.mark.parametrize("device", ["CPU", "NUMPY", "TEMPLATE"])
def test_prepare_and_run(device: str) -> None:
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 16)
    rep = backend.prepare(add_relu(), device)
    (out,) = rep.run([x, x])
    np.testing.assert_allclose(out, np.maximum(2 * x, 0))
    assert rep.run({"a": x, "b": x}).d is not None  # outputs are a named tuple


def test_supports_device() -> None:
    assert backend.supports_device("CPU")
    assert backend.supports_device("NUMPY")
    assert not backend.supports_device("NO_SUCH_DEVICE")


def test_run_node() -> None:
    node = helper.make_node("Add", ["x", "y"], ["z"])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (z,) = backend.run_node(node, [x, x], device="NUMPY")
    np.testing.assert_array_equal(z, 2 * x)


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE"])
def test_accepts_ml_dtypes_arrays(device: str) -> None:
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)],
        "cast_bf16",
        [helper.make_tensor_value_info("x", TensorProto.BFLOAT16, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    x = np.array([1.5, -2.0, 0.25, 3.0], dtype=ml_dtypes.bfloat16)
    (y,) = backend.run_model(model, [x], device=device)
    np.testing.assert_array_equal(y, x.astype(np.float32))


def test_bad_model_through_backend() -> None:
    with pytest.raises(errors.InvalidModelError):
        backend.prepare(b"not a model", "NUMPY")
    model = add_relu()
    model.graph.node[0].op_type = "NoSuchOp"
    with pytest.raises(errors.ModelError):
        backend.prepare(onnx.ModelProto.FromString(model.SerializeToString()), "NUMPY")
