"""Real plugins for the virtual-device tests: NUMPY with a slow compile, a slow run, or a
run that fails (subclasses of the NUMPY plugin, registered in a test's own Core)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from onnx import TensorProto, helper

from aioinfer.errors import InferenceError
from aioinfer.model import Model
from aioinfer.plugins.base import Stage
from aioinfer.plugins.numpy.plugin import NumpyCompiledModel, NumpyInferRequest, NumpyPlugin


class SlowCompilePlugin(NumpyPlugin):
    """NUMPY whose compile takes ``delay`` seconds more; ``compiled_at`` records when each
    compile finished (``time.perf_counter()``)."""

    delay = 0.8

    def __init__(self, name: str = "SLOWCOMPILE") -> None:
        super().__init__(name)
        self.compiled_at: list[float] = []

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> NumpyCompiledModel:
        time.sleep(self.delay)
        compiled = super().compile_model(model, config)
        self.compiled_at.append(time.perf_counter())
        return compiled


class _SlowRequest(NumpyInferRequest):
    def stages(self) -> list[Stage]:
        [stage] = super().stages()
        plugin = self.compiled.plugin
        assert isinstance(plugin, SlowRunPlugin)

        def slow() -> None:
            time.sleep(plugin.run_delay)
            stage.fn()

        return [Stage("infer", stage.executor, slow)]


class _SlowCompiled(NumpyCompiledModel):
    def create_sync_request(self) -> NumpyInferRequest:
        return _SlowRequest(self)


class SlowRunPlugin(NumpyPlugin):
    """NUMPY whose every run takes ``run_delay`` seconds more."""

    run_delay = 0.05

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> NumpyCompiledModel:
        compiled = super().compile_model(model, config)
        compiled.__class__ = _SlowCompiled
        return compiled


class _FailingRequest(NumpyInferRequest):
    def stages(self) -> list[Stage]:
        [stage] = super().stages()

        def fail() -> None:
            raise InferenceError("the device lost its mind", node="add",
                                 device=self.compiled.plugin.name)

        return [Stage("infer", stage.executor, fail)]


class _FailingCompiled(NumpyCompiledModel):
    def create_sync_request(self) -> NumpyInferRequest:
        return _FailingRequest(self)


class FailingRunPlugin(NumpyPlugin):
    """NUMPY whose runs all fail with an InferenceError."""

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> NumpyCompiledModel:
        compiled = super().compile_model(model, config)
        compiled.__class__ = _FailingCompiled
        return compiled


def batch_model(features: int = 8, batch: int | str = "N") -> Any:
    """y = Relu(x @ W + b), x [batch, features]: batchable when ``batch`` is 1 or dynamic."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((features, features)).astype(np.float32)
    bias = rng.standard_normal(features).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["m"], name="matmul"),
         helper.make_node("Add", ["m", "b"], ["s"], name="bias"),
         helper.make_node("Relu", ["s"], ["y"], name="relu")],
        "batchable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, features])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, weight.shape, weight.ravel()),
                     helper.make_tensor("b", TensorProto.FLOAT, bias.shape, bias)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def batch_reference(x: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((8, 8)).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    return np.maximum(x @ weight + bias, 0)
