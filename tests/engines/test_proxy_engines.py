"""The CPU proxy with the engines installed: OPENVINO primary, custom ops through HETERO.

Real models and real engines: OpenVINO's ``query_model`` (mapped back to ONNX node names)
decides what stays on OpenVINO, the next plugin in the proxy's priority that runs a custom
node runs it, and results match a NumPy reference on both paths.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")

import anyio  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference.op_run import OpRun  # noqa: E402

import aioinfer  # noqa: E402
from aioinfer import models  # noqa: E402
from aioinfer import properties as P  # noqa: E402
from aioinfer.errors import UnsupportedOperationError  # noqa: E402
from aioinfer.plugins.hetero import HeteroCompiledModel  # noqa: E402
from aioinfer.plugins.openvino.compiled_model import OpenVinoCompiledModel  # noqa: E402

from ._models import (  # noqa: E402
    DOMAIN,
    SoftClip,
    custom_op_model,
    custom_op_reference,
    small_bert,
    small_cnn,
)

pytestmark = pytest.mark.timeout(120)


def template_kernel() -> type[OpRun]:
    """The same op as an onnx.reference kernel (named by its class), for TEMPLATE only."""

    class SoftClip(OpRun):
        op_domain = DOMAIN

        def _run(self, x):  # type: ignore[no-untyped-def]
            return ((x / (1 + np.abs(x))).astype(x.dtype),)

    return SoftClip


class SoftClipWithFunction(SoftClip):
    """SoftClip with a decomposition: x / (1 + Abs(x)), which any device can run."""

    op_type = "SoftClip"

    @classmethod
    def function(cls):  # type: ignore[no-untyped-def]
        nodes = [helper.make_node("Abs", ["x"], ["a"]),
                 helper.make_node("Constant", [], ["one"], value_float=1.0),
                 helper.make_node("Add", ["a", "one"], ["d"]),
                 helper.make_node("Div", ["x", "d"], ["y"])]
        return helper.make_function(DOMAIN, "SoftClip", ["x"], ["y"], nodes,
                                    [helper.make_opsetid("", 17)])


def _check(compiled: aioinfer.CompiledModel) -> None:
    x = np.random.default_rng(5).standard_normal((4, 8)).astype(np.float32)
    want = custom_op_reference(x)
    np.testing.assert_allclose(compiled({"x": x})["y"], want, rtol=1e-5, atol=1e-5)

    async def concurrently() -> None:
        async def one() -> None:
            got = await compiled.create_infer_request().infer_async({"x": x})
            np.testing.assert_allclose(got["y"], want, rtol=1e-5, atol=1e-5)

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)

    anyio.run(concurrently)


def test_openvino_is_the_primary() -> None:
    behind = aioinfer.Core().get_property("CPU", P.PROXY_ALIAS_FOR)
    assert behind[0] == "OPENVINO" and behind[-2:] == ["NUMPY", "TEMPLATE"]


@pytest.mark.parametrize("build", [small_cnn, small_bert], ids=["cnn", "bert"])
def test_a_model_openvino_runs_compiles_on_it_directly(build: object) -> None:
    core = aioinfer.Core()
    proto = build()  # type: ignore[operator]
    with core.compile_model(proto, "CPU") as compiled:
        assert isinstance(compiled, OpenVinoCompiledModel)  # no HETERO, no extra stage
        assert compiled.get_property(P.INFERENCE_PRECISION_HINT) == "f32"
        feeds = models.example_inputs(proto)
        want = core.compile_model(proto, "NUMPY")(feeds)
        for k, value in enumerate(compiled(feeds).values()):
            np.testing.assert_allclose(value, want[k], rtol=1e-4, atol=1e-4)


def test_an_op_extension_runs_on_numpy_around_openvino() -> None:
    core = aioinfer.Core()
    core.add_extension(SoftClip)
    model = core.read_model(custom_op_model())
    assert "clip" not in core.query_model(model, "OPENVINO")  # OpenVINO says: not mine
    assert core.query_model(model, "CPU") == {n.name: "CPU" for n in model.proto.graph.node}
    with core.compile_model(model, "CPU") as compiled:
        assert isinstance(compiled, HeteroCompiledModel)
        assert compiled.get_property(P.EXECUTION_DEVICES) == ["OPENVINO", "NUMPY"]
        parts = [(sub.device, [n.name for n in sub.model.proto.graph.node])
                 for sub in compiled.submodels()]
        assert parts == [("OPENVINO", ["mm1", "relu"]), ("NUMPY", ["clip"]),
                         ("OPENVINO", ["mm2", "residual"])]
        _check(compiled)


def test_an_op_only_template_runs() -> None:
    core = aioinfer.Core()
    core._plugin("TEMPLATE").add_operations([template_kernel()])  # type: ignore[attr-defined]
    proto = custom_op_model()  # no infer_shape here: the cut needs the custom output's type
    proto.graph.value_info.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, [4, 8]))
    with core.compile_model(proto, "CPU") as compiled:
        assert compiled.get_property(P.EXECUTION_DEVICES) == ["OPENVINO", "TEMPLATE"]
        _check(compiled)


def test_a_decomposition_runs_where_the_priority_says() -> None:
    """With a decomposition, the first plugin after OpenVINO that runs the function gets the
    node (OpenVINO's ONNX frontend ignores a custom domain's local functions)."""
    core = aioinfer.Core()
    core.add_extension(SoftClipWithFunction)
    with core.compile_model(custom_op_model(), "CPU") as compiled:
        devices = compiled.get_property(P.EXECUTION_DEVICES)
        assert devices[0] == "OPENVINO" and len(devices) == 2, devices
        _check(compiled)


def test_without_the_extension_the_op_and_domain_are_named() -> None:
    with pytest.raises(UnsupportedOperationError, match=f"CPU: .*'clip'.*{DOMAIN}.SoftClip"
                       ) as info:
        aioinfer.Core().compile_model(custom_op_model(), "CPU")
    assert info.value.node == "clip" and info.value.op_type == "SoftClip"
    assert info.value.device == "CPU"


def test_a_string_model_is_left_to_other_plugins() -> None:
    """OpenVINO corrupts its heap on string tensors (an Identity): it claims no such node."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"], name="id")], "strings",
        [helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, [2])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    core = aioinfer.Core()
    assert core.query_model(proto, "OPENVINO") == {}
    with pytest.raises(UnsupportedOperationError, match="string"):
        core.compile_model(proto, "OPENVINO")
    compiled = core.compile_model(proto, "CPU")
    assert "OPENVINO" not in compiled.get_property(P.EXECUTION_DEVICES)
    assert list(compiled({"x": np.array(["a", "bc"], dtype=object)})["y"]) == ["a", "bc"]
