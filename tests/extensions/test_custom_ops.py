"""Custom operations (aioinfer.Op) through Core.add_extension, on every device kind."""

from __future__ import annotations

import numpy as np
import pytest

import aioinfer
from aioinfer.errors import (
    ExtensionError,
    InferenceError,
    PartitionError,
    UnsupportedOperationError,
)
from aioinfer.plugins.template import TemplatePlugin

from .ops import DOMAIN, SplitSum, Swish, split_sum_model, swish_model, swish_reference

# CPU (the proxy) is left out while its primary may be OPENVINO, which gets no extensions yet.
DEVICES = [
    ("NUMPY", {}),
    ("TEMPLATE", {}),
    # NUMPY claims the op too; the affinity forces a cut on each side of it onto TEMPLATE
    ("HETERO:NUMPY,TEMPLATE", {"AFFINITY": {"swish": "TEMPLATE"}}),
]


@pytest.fixture
def core() -> aioinfer.Core:
    core = aioinfer.Core()
    core.add_extension(Swish)
    return core


@pytest.mark.parametrize(("device", "config"), DEVICES, ids=[d for d, _ in DEVICES])
def test_custom_op_matches_numpy(core: aioinfer.Core, device: str, config: dict) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    with core.compile_model(swish_model(), device, config) as compiled:
        np.testing.assert_allclose(compiled({"x": x})["z"], swish_reference(x), rtol=1e-6)


def test_hetero_cuts_around_the_op(core: aioinfer.Core) -> None:
    compiled = core.compile_model(swish_model(), "HETERO:NUMPY,TEMPLATE",
                                  {"AFFINITY": {"swish": "TEMPLATE"}})
    assert [sub.device for sub in compiled.submodels()] == ["NUMPY", "TEMPLATE", "NUMPY"]
    compiled.release()


def test_infer_shape_types_the_boundaries() -> None:
    class Untyped(Swish):
        domain = "com.untyped"
        op_type = "Swish"

        def infer_shape(self, inputs, **attributes):  # type: ignore[no-untyped-def]
            return None

        @classmethod
        def function(cls):  # type: ignore[no-untyped-def]
            return None  # (a decomposition would type 'y' through ONNX shape inference)

    core = aioinfer.Core()
    core.add_extension(Untyped)
    proto = swish_model()
    proto.graph.node[1].domain = proto.opset_import[1].domain = "com.untyped"
    with pytest.raises(PartitionError, match="'y'"):
        core.compile_model(proto, "HETERO:NUMPY,TEMPLATE", {"AFFINITY": {"swish": "TEMPLATE"}})
    typed = aioinfer.Core()
    typed.add_extension(Swish)
    model = typed.read_model(swish_model())
    kind = model.value_type("y")
    assert kind is not None and [d.dim_value for d in kind.tensor_type.shape.dim] == [2, 3]


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE", "HETERO:TEMPLATE,NUMPY"])
def test_several_outputs(device: str) -> None:
    core = aioinfer.Core()
    core.add_extension([SplitSum])
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    results = core.compile_model(split_sum_model(), device)({"x": x})
    np.testing.assert_array_equal(results["out"], x.sum(axis=1) + 1)
    np.testing.assert_array_equal(results["mx"], np.float32(11))


@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE", "HETERO:NUMPY,TEMPLATE"])
def test_without_the_extension_names_op_and_domain(device: str) -> None:
    with pytest.raises(UnsupportedOperationError, match=f"{DOMAIN}.*Swish") as info:
        aioinfer.Core().compile_model(swish_model(), device)
    assert info.value.op_type == "Swish" and info.value.node == "swish"


def test_two_cores_do_not_share_ops(core: aioinfer.Core) -> None:
    other = aioinfer.Core()
    core.compile_model(swish_model(), "NUMPY")
    assert "swish" not in other.query_model(swish_model(), "NUMPY")
    assert core.query_model(swish_model(), "NUMPY")["swish"] == "NUMPY"
    with pytest.raises(UnsupportedOperationError):
        other.compile_model(swish_model(), "NUMPY")


def test_added_after_the_plugin_loaded() -> None:
    core = aioinfer.Core()
    with pytest.raises(UnsupportedOperationError):
        core.compile_model(swish_model(), "NUMPY")  # NUMPY is loaded now, without the op
    core.add_extension(f"{__name__.rsplit('.', 1)[0]}.ops:Swish")
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(core.compile_model(swish_model(), "NUMPY")({"x": x})["z"],
                               swish_reference(x), rtol=1e-6)


@pytest.mark.anyio
@pytest.mark.parametrize("device", ["NUMPY", "TEMPLATE", "HETERO:NUMPY,TEMPLATE"])
async def test_evaluate_error_reaches_the_awaiting_caller(core: aioinfer.Core,
                                                          device: str) -> None:
    compiled = core.compile_model(swish_model(beta=-1.0), device)
    request = compiled.create_infer_request()
    x = np.ones((2, 3), np.float32)
    with pytest.raises(InferenceError, match=f"swish.*{DOMAIN}::Swish.*beta must be") as info:
        await request.infer_async({"x": x})
    assert info.value.node == "swish"
    assert not request.busy  # reusable after the failure
    compiled.release()


class _NoOpsTemplate(TemplatePlugin):
    """A device that cannot run Op.evaluate: it gets the ops' decompositions instead."""

    runs_operations = False


def test_decomposition_for_a_device_without_ops(core: aioinfer.Core) -> None:
    core.register_plugin(_NoOpsTemplate("PLAIN"), "PLAIN")
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    compiled = core.compile_model(swish_model(), "PLAIN")
    assert [f.name for f in compiled.model.proto.functions] == ["Swish"]
    np.testing.assert_allclose(compiled({"x": x})["z"], swish_reference(x), rtol=1e-5)
    bare = aioinfer.Core()
    bare.register_plugin(_NoOpsTemplate("PLAIN"), "PLAIN")
    with pytest.raises(UnsupportedOperationError, match=f"{DOMAIN}.Swish"):
        bare.compile_model(swish_model(), "PLAIN")


def test_numpy_prefers_its_kernel_over_the_decomposition(core: aioinfer.Core) -> None:
    proto = swish_model()
    proto.functions.append(Swish.function())
    plan = core.compile_model(proto, "NUMPY").plan
    assert [s.op_type for s in plan.steps if s.op_type in ("Swish", "Sigmoid")] == ["Swish"]


@pytest.mark.parametrize("bad", [
    int, "no.such.module:Op", "no_such_entry_point", 42,
])
def test_bad_extensions_are_refused(bad: object) -> None:
    with pytest.raises(ExtensionError):
        aioinfer.Core().add_extension(bad)


def test_an_op_needs_a_domain_and_evaluate() -> None:
    class NoDomain(aioinfer.Op):
        def evaluate(self, x):  # type: ignore[no-untyped-def]
            return x

    class NoEvaluate(aioinfer.Op):
        domain = "com.x"

    for cls in (NoDomain, NoEvaluate):
        with pytest.raises(ExtensionError, match=cls.__name__ if cls is NoDomain else "evaluate"):
            aioinfer.Core().add_extension(cls)


def test_wrong_arity_is_a_typed_error() -> None:
    class TwoForOne(Swish):
        domain = "com.arity"
        op_type = "Swish"

        def evaluate(self, x, *, beta=1.0):  # type: ignore[no-untyped-def]
            return x, x

    core = aioinfer.Core()
    core.add_extension(TwoForOne)
    proto = swish_model()
    proto.graph.node[1].domain = proto.opset_import[1].domain = "com.arity"
    with pytest.raises(InferenceError, match="2 values, the node has 1 outputs"):
        core.compile_model(proto, "NUMPY")({"x": np.ones((2, 3), np.float32)})
