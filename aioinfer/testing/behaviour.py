"""The plugin behaviour suite: request behaviour every device must have, written once.

Like OpenVINO's shared functional tests and trio's ``testing/_check_streams.py``: io tensors,
wait, callback, multithreading, chaining, cancellation and busy requests, on small real ONNX
models (Add, Relu, MatMul). Async checks run on every event loop available (asyncio, uvloop,
trio). Plugin authors run it against their device from pytest::

    from aioinfer.testing.behaviour import PluginBehaviour

    class TestMyDevice(PluginBehaviour):
        device = "MYDEVICE"

or without pytest: ``python -m aioinfer.testing.behaviour MYDEVICE`` (see :func:`run_all`).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..core import Core
from ..errors import InputError, RequestBusyError, RequestCancelledError
from ..plugins.base import CompiledModel, Stage
from ..runtime.infer_queue import AsyncInferQueue
from ..runtime.request import InferRequest

SHAPE = [2, 8]


def add_relu_model() -> onnx.ModelProto:
    """y = Relu(a + b), float32 [2, 8]."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["s"], name="add"),
         helper.make_node("Relu", ["s"], ["y"], name="relu")],
        "behaviour_add_relu",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, SHAPE),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def matmul_model() -> onnx.ModelProto:
    """y = x @ W + x: [2, 8] -> [2, 8], so one output feeds the next request."""
    weight = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["m"], name="matmul"),
         helper.make_node("Add", ["m", "x"], ["y"], name="residual")],
        "behaviour_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)],
        initializer=[numpy_helper.from_array(weight, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def matmul_reference(x: np.ndarray) -> np.ndarray:
    weight = np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8)
    return (x @ weight + x).astype(np.float32)


def loop_backends() -> list[tuple[str, dict[str, Any]]]:
    """The event loops the async checks run on (those installed)."""
    backends: list[tuple[str, dict[str, Any]]] = [("asyncio", {})]
    if importlib.util.find_spec("uvloop") is not None:
        backends.append(("asyncio", {"use_uvloop": True}))
    if importlib.util.find_spec("trio") is not None:
        backends.append(("trio", {}))
    return backends


def on_every_loop(fn: Callable[[], Awaitable[None]]) -> None:
    """Run the async check ``fn`` once on each available event loop."""
    for backend, options in loop_backends():
        anyio.run(fn, backend=backend, backend_options=options)


def gate(request: InferRequest) -> threading.Event:
    """Hold ``request``'s next runs at a first stage (on its first executor) until the
    returned event is set: the request is then busy for as long as the check needs."""
    event = threading.Event()
    stages = request._stages

    def hold() -> None:
        event.wait(30)

    request._stages = [Stage("gate", stages[0].executor, hold), *stages]
    return event


def _inputs(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a": rng.standard_normal(SHAPE).astype(np.float32),
            "b": rng.standard_normal(SHAPE).astype(np.float32)}


def _expected(inputs: dict[str, np.ndarray]) -> np.ndarray:
    return np.maximum(inputs["a"] + inputs["b"], 0)


def _close(actual: Any, expected: np.ndarray) -> None:
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-5, atol=1e-6)


class PluginBehaviour:
    """Behaviour checks for one device; subclass and set ``device`` (pytest collects the
    ``test_*`` methods), or call :func:`run_all`."""

    device: str = ""

    def core(self) -> Core:
        return Core()

    def compile(self, model: onnx.ModelProto, config: dict[str, Any] | None = None
                ) -> CompiledModel:
        if not self.device:
            raise ValueError("PluginBehaviour: set `device` to the device under test")
        return self.core().compile_model(model, self.device, config or {})

    # -- io tensors --------------------------------------------------------------------------
    def test_io_tensors(self) -> None:
        request = self.compile(add_relu_model()).create_infer_request()
        inputs = _inputs(0)
        request.set_tensor("a", inputs["a"])
        request.set_tensor(1, inputs["b"])
        np.testing.assert_array_equal(request.get_tensor("a"), inputs["a"])
        results = request.infer()
        _close(results["y"], _expected(inputs))
        _close(request.get_tensor("y"), _expected(inputs))
        assert request.results is results and list(results) == ["y"]
        _close(results[0], _expected(inputs))

    def test_bad_input_is_a_typed_error(self) -> None:
        request = self.compile(add_relu_model()).create_infer_request()
        try:
            request.infer({"a": np.zeros(SHAPE, np.float32)})
        except InputError as exc:
            assert exc.input_name == "b", exc.input_name
        else:
            raise AssertionError("a missing input was accepted")
        _close(request.infer(_inputs(1))["y"], _expected(_inputs(1)))

    # -- wait and callback ---------------------------------------------------------------------
    def test_wait(self) -> None:
        request = self.compile(add_relu_model()).create_infer_request()
        held = gate(request)
        request.start_async(_inputs(2))
        assert not request.wait_for(0.05) and request.busy
        held.set()
        assert request.wait_for(30)
        _close(request.wait()["y"], _expected(_inputs(2)))
        assert not request.busy

    def test_callback(self) -> None:
        request = self.compile(add_relu_model()).create_infer_request()
        seen: list[Any] = []
        done = threading.Event()

        def callback(req: InferRequest, userdata: Any) -> None:
            seen.append((userdata, req.error, np.array(req.results["y"])))
            done.set()

        request.set_callback(callback)
        request.start_async(_inputs(3), userdata="tag")
        assert done.wait(30), "the callback was not called"
        request.wait()
        assert seen[0][0] == "tag" and seen[0][1] is None
        _close(seen[0][2], _expected(_inputs(3)))

    # -- threads -----------------------------------------------------------------------------
    def test_multithreading(self) -> None:
        compiled = self.compile(add_relu_model())
        failures: list[str] = []

        def worker(k: int) -> None:
            try:
                request = compiled.create_infer_request()
                for j in range(10):
                    inputs = _inputs(k * 100 + j)
                    _close(request.infer(inputs)["y"], _expected(inputs))
                    _close(compiled(inputs)["y"], _expected(inputs))
            except BaseException as exc:
                failures.append(f"thread {k}: {exc!r}")

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not failures, failures

    # -- chaining ----------------------------------------------------------------------------
    def test_chaining_in_callback(self) -> None:
        compiled = self.compile(matmul_model())
        first, second = compiled.create_infer_request(), compiled.create_infer_request()
        done = threading.Event()
        x = np.random.default_rng(4).standard_normal(SHAPE).astype(np.float32)

        def feed(req: InferRequest, _: Any) -> None:
            second.set_callback(lambda *_: done.set())
            second.start_async([req.results["y"]])

        first.set_callback(feed)
        first.start_async([x])
        assert done.wait(30)
        _close(second.wait()["y"], matmul_reference(matmul_reference(x)))

    def test_chaining_with_await(self) -> None:
        compiled = self.compile(matmul_model())

        async def check() -> None:
            first, second = compiled.create_infer_request(), compiled.create_infer_request()
            x = np.random.default_rng(5).standard_normal(SHAPE).astype(np.float32)
            middle = await first.infer_async([x])
            out = await second.infer_async([middle["y"]])
            _close(out["y"], matmul_reference(matmul_reference(x)))

        on_every_loop(check)

    # -- async, cancellation, busy -------------------------------------------------------------
    def test_infer_async_concurrent(self) -> None:
        compiled = self.compile(add_relu_model())

        async def check() -> None:
            async def one(k: int) -> None:
                request = compiled.create_infer_request()
                for j in range(5):
                    inputs = _inputs(k * 10 + j)
                    _close((await request.infer_async(inputs))["y"], _expected(inputs))

            async with anyio.create_task_group() as tg:
                for k in range(8):
                    tg.start_soon(one, k)
            queue = AsyncInferQueue(compiled, jobs=2)
            for k in range(6):
                await queue.submit(_inputs(k), userdata=k)
            got = [r.userdata async for r in queue]
            assert got == list(range(6)), got

        on_every_loop(check)

    def test_cancellation(self) -> None:
        compiled = self.compile(add_relu_model())

        async def check() -> None:
            request = compiled.create_infer_request()
            held = gate(request)
            with anyio.move_on_after(0.05) as scope:
                threading.Timer(0.2, held.set).start()
                await request.infer_async(_inputs(6))
            assert scope.cancelled_caught and not request.busy
            request._stages = request._stages[1:]  # drop the gate
            _close((await request.infer_async(_inputs(7)))["y"], _expected(_inputs(7)))

        on_every_loop(check)
        request = compiled.create_infer_request()
        held = gate(request)
        request.start_async(_inputs(8))
        request.cancel()
        held.set()
        try:
            request.wait()
        except RequestCancelledError:
            pass
        else:
            raise AssertionError("a cancelled request produced results")
        assert not request.busy

    def test_busy_request(self) -> None:
        request = self.compile(add_relu_model()).create_infer_request()
        held = gate(request)
        request.start_async(_inputs(9))
        for attempt in (lambda: request.infer(_inputs(9)), lambda: request.start_async()):
            try:
                attempt()
            except RequestBusyError:
                continue
            raise AssertionError("a busy request accepted another inference")
        held.set()
        request.wait()


def checks() -> list[str]:
    """The names of the behaviour checks."""
    return sorted(name for name in dir(PluginBehaviour) if name.startswith("test_"))


def run_all(device: str) -> dict[str, str | None]:
    """Run every check against ``device``: name -> ``None`` (passed) or the failure text."""
    suite = type("Behaviour", (PluginBehaviour,), {"device": device})()
    outcome: dict[str, str | None] = {}
    for name in checks():
        try:
            getattr(suite, name)()
            outcome[name] = None
        except Exception:
            outcome[name] = traceback.format_exc()
    return outcome


def main(argv: list[str] | None = None) -> int:
    devices = (argv if argv is not None else sys.argv[1:]) or ["NUMPY"]
    failed = 0
    for device in devices:
        for name, failure in run_all(device).items():
            print(f"{device:10} {name:32} {'ok' if failure is None else 'FAILED'}")
            if failure:
                failed += 1
                print(failure)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
