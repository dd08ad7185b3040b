"""Custom-domain ops through the onnxruntime face: a session built on a Core that has the
``Op`` extension runs the model (the custom node on a plugin that has the op, the rest where
the provider puts it); without the extension the session refuses it, naming op and domain."""

from __future__ import annotations

import numpy as np
import pytest

import aioinfer
from aioinfer.errors import UnsupportedOperationError
from aioinfer.onnxruntime import InferenceSession

from .ops import DOMAIN, SplitSum, Swish, split_sum_model, swish_model, swish_reference


@pytest.fixture
def core() -> aioinfer.Core:
    core = aioinfer.Core()
    core.add_extension(Swish)
    core.add_extension(SplitSum)
    return core


def test_swish_runs_through_an_inference_session(core: aioinfer.Core) -> None:
    session = InferenceSession(swish_model().SerializeToString(), core=core)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    (z,) = session.run(None, {"x": x})
    np.testing.assert_allclose(z, swish_reference(x), rtol=1e-5, atol=1e-6)


def test_an_op_without_a_decomposition_runs_on_a_plugin_with_its_extension(
        core: aioinfer.Core) -> None:
    session = InferenceSession(split_sum_model().SerializeToString(), core=core)
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    out, mx = session.run(None, {"x": x})
    np.testing.assert_allclose(out, x.sum(axis=1) + 1)
    assert float(mx) == 11.0


@pytest.mark.anyio
async def test_run_async_with_a_custom_op(core: aioinfer.Core) -> None:
    session = InferenceSession(swish_model().SerializeToString(), core=core)
    x = np.linspace(-3, 3, 6, dtype=np.float32).reshape(2, 3)
    (z,) = await session.run_async(None, {"x": x})
    np.testing.assert_allclose(z, swish_reference(x), rtol=1e-5, atol=1e-6)


def test_without_the_extension_the_session_names_op_and_domain() -> None:
    with pytest.raises(UnsupportedOperationError, match=f"{DOMAIN}.*SplitSum"):
        InferenceSession(split_sum_model().SerializeToString(), core=aioinfer.Core())
