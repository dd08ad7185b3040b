"""Small real ONNX models for the runtime tests, and a loop-lag probe."""

from __future__ import annotations

import threading
import time

import anyio
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def add_model(shape: tuple[int, ...] = (1, 16)) -> onnx.ModelProto:
    """y = a + b (float32): the cheapest real model, for overhead and ordering tests."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
        "add",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, list(shape)),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def matmul_chain(size: int = 128, depth: int = 8, seed: int = 0) -> onnx.ModelProto:
    """x -> (MatMul W, Relu) * depth: a model that takes milliseconds, for cancellation."""
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32)
    nodes, name = [], "x"
    for k in range(depth):
        nodes.append(helper.make_node("MatMul", [name, "W"], [f"m{k}"], name=f"matmul{k}"))
        nodes.append(helper.make_node("Relu", [f"m{k}"], [f"r{k}"], name=f"relu{k}"))
        name = f"r{k}"
    graph = helper.make_graph(
        nodes, "matmul_chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [size, size])],
        initializer=[numpy_helper.from_array(weight, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def matmul_chain_reference(x: np.ndarray, size: int = 128, depth: int = 8,
                           seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    weight = (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32)
    for _ in range(depth):
        x = np.maximum(x @ weight, 0)
    return x


class LoopLag:
    """A task that sleeps 1 ms in a loop and records how late each wake-up is (seconds)."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._stop = False

    async def run(self) -> None:
        while not self._stop:
            start = time.perf_counter()
            await anyio.sleep(0.001)
            self.delays.append(time.perf_counter() - start - 0.001)

    def stop(self) -> None:
        self._stop = True

    @property
    def worst(self) -> float:
        return max(self.delays, default=0.0)


async def wait_busy(request: object, timeout: float = 5.0) -> None:
    """Yield to the loop until ``request`` has started (the other task got scheduled)."""
    with anyio.fail_after(timeout):
        while not request.busy:  # type: ignore[attr-defined]
            await anyio.sleep(0)


def gate_request(request: object) -> threading.Event:
    """Put a stage in front of ``request``'s pipeline that blocks until the returned event is
    set, on the same executor as its first stage: the run is then deterministically busy."""
    from aioinfer.plugins.base import Stage

    gate = threading.Event()
    stages = request._stages  # type: ignore[attr-defined]
    request._stages = [Stage("gate", stages[0].executor,  # type: ignore[attr-defined]
                             lambda: gate.wait(30)), *stages]
    return gate
