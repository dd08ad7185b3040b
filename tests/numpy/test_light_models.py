"""The nine model-zoo "light" models shipped in the onnx wheel, end to end on the NUMPY plan.

Each ``light_<name>.onnx`` sits beside ``light_<name>_output_0.pb``; the input is the one onnx's
backend runner feeds them (``arange(n).reshape(shape) / n`` as float32), and the tolerances are
those of ``onnx.backend.test.case.model`` (rtol 1e-3, 2e-3 for densenet121; atol 1e-7).
"""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from aioinfer.plugins.numpy.compiler import compile_graph
from aioinfer.plugins.numpy.kernels import jit

from ._blas import rows_consistent

pytestmark = pytest.mark.usefixtures("tier")
LIGHT = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"

MODELS = {
    "bvlc_alexnet": 1e-3,
    "densenet121": 2e-3,
    "inception_v1": 1e-3,
    "inception_v2": 1e-3,
    "resnet50": 1e-3,
    "shufflenet": 1e-3,
    "squeezenet": 1e-3,
    "vgg19": 1e-3,
    "zfnet512": 1e-3,
}
ATOL = 1e-7


def dummy_input(info: onnx.ValueInfoProto) -> np.ndarray:
    """The deterministic input onnx's backend runner generates for these models."""
    dims = info.type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)
    n = int(np.prod(shape))
    return (np.arange(n).reshape(shape) / n).astype(np.float32)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_light_model(name: str) -> None:
    path = LIGHT / f"light_{name}.onnx"
    if not path.exists():
        pytest.skip(f"{path} is not shipped by this onnx wheel")
    if name == "squeezenet" and not rows_consistent():
        pytest.skip("this BLAS rounds equal rows apart: the expected uniform softmax of "
                    "squeezenet's equal 9.5e9 logits is out of reach (tests/numpy/_blas.py)")
    model = onnx.load(str(path))
    inits = {t.name for t in model.graph.initializer}
    inputs = [dummy_input(i) for i in model.graph.input if i.name not in inits]
    expected = [
        numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"light_{name}_output_{k}.pb")))
        for k in range(len(model.graph.output))
    ]
    opsets = {o.domain: o.version for o in model.opset_import}
    plan = jit.specialise(compile_graph(model.graph, opsets, functions=model.functions))
    outputs = plan.run(inputs)
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected, strict=True):
        got = np.asarray(got)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=MODELS[name], atol=ATOL)
