"""Real plugins for the virtual-device tests: NUMPY with a slow compile, a slow run, a run
that fails (always, or on marked inputs), a compute of its own (not the host's cores), or
output buffers reused from run to run (subclasses of the NUMPY plugin, registered in a test's
own Core)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from onnx import TensorProto, helper

from aioinfer import properties as P
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
            compiled = self.compiled
            first = not getattr(compiled, "_warmed", False)
            compiled._warmed = True  # type: ignore[attr-defined]
            if plugin.gate is not None:
                plugin.gate.wait(10.0)
            time.sleep(plugin.first_delay if first and plugin.first_delay else plugin.run_delay)
            stage.fn()

        return [Stage("infer", stage.executor, slow)]


class _SlowCompiled(NumpyCompiledModel):
    def create_sync_request(self) -> NumpyInferRequest:
        return _SlowRequest(self)


class SlowRunPlugin(NumpyPlugin):
    """NUMPY whose every run takes ``run_delay`` seconds more (the first run of each compiled
    model ``first_delay``, if set: a warm-up); with a ``gate``, every run first waits until
    the gate is set (at most 10 s), so a test decides when the device frees up."""

    run_delay = 0.05
    first_delay = 0.0
    gate: threading.Event | None = None

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


class OwnComputePlugin(SlowRunPlugin):
    """A slow-running device with a ``DEVICE_UUID`` of its own (an accelerator: its runs
    take no cores from the host plugins)."""

    def get_property(self, key: str) -> Any:
        if key == P.DEVICE_UUID:
            return f"accelerator-{self.name}"
        return super().get_property(key)


MARK = -1234.5
"""The value that makes :class:`TripwirePlugin` fail a run: the first element of input 0."""


class _TripwireRequest(NumpyInferRequest):
    def stages(self) -> list[Stage]:
        [stage] = super().stages()

        def run() -> None:
            first = np.asarray(self.inputs[0]).reshape(-1)
            if (first == MARK).any():  # any sample of a batch
                raise InferenceError(f"marked input on {self.compiled.plugin.name}",
                                     node="add", device=self.compiled.plugin.name)
            stage.fn()

        return [Stage("infer", stage.executor, run)]


class _TripwireCompiled(NumpyCompiledModel):
    def create_sync_request(self) -> NumpyInferRequest:
        return _TripwireRequest(self)


class TripwirePlugin(NumpyPlugin):
    """NUMPY whose run fails with an InferenceError when input 0 holds :data:`MARK`."""

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> NumpyCompiledModel:
        compiled = super().compile_model(model, config)
        compiled.__class__ = _TripwireCompiled
        return compiled


class _ReusingRequest(NumpyInferRequest):
    def stages(self) -> list[Stage]:
        [stage] = super().stages()
        buffers: list[np.ndarray] = []

        def run() -> None:
            stage.fn()
            if not buffers:
                buffers.extend(np.empty_like(out) for out in self.outputs)
            for buffer, out in zip(buffers, self.outputs, strict=True):
                np.copyto(buffer, out)
            self.outputs = list(buffers)  # the same arrays every run, as an engine's own

        return [Stage("infer", stage.executor, run)]


class _ReusingCompiled(NumpyCompiledModel):
    fresh_outputs = False

    def create_sync_request(self) -> NumpyInferRequest:
        return _ReusingRequest(self)


class ReusingPlugin(NumpyPlugin):
    """NUMPY whose requests write every run's results into the same output arrays (as
    OpenVINO's requests and ONNX Runtime's IOBinding do), and say so (``fresh_outputs``)."""

    def compile_model(self, model: Model, config: Mapping[str, Any]) -> NumpyCompiledModel:
        compiled = super().compile_model(model, config)
        compiled.__class__ = _ReusingCompiled
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
