"""The example plugin EP (``aioinfer.ort.ep.examples.fused_elementwise``) against NUMPY running
the same elementwise chains op by op.

Usage: ``python benchmarks/ep_fusion.py [--rounds N] [--runs N] [--models chain,blocks]
[--rows 512] [--width 768] [--profile]``.

Models (float32, ``[1, rows, width]``):

- ``chain``: one 10-op chain: ``x * gamma + beta`` (``[width]`` constants, broadcast), then
  GELU's tanh form written ``b * (1 + tanh(0.79788456 (b + 0.044715 b^3))) * 0.5`` with
  ``Pow(b, 3)``, then ``* 0.5`` ... (see :func:`chain_nodes`);
- ``swish``: one 9-op chain NUMPY has no pattern for (Sigmoid, Tanh, Clip, LeakyRelu, ...);
- ``blocks``: three bottleneck blocks, each the ``chain`` and ``swish`` ops (19 ops, one
  group), ``MatMul [width, 64]``, a 3-op chain on the narrow tensor, ``MatMul [64, width]``
  and a residual ``Add`` (which the next block's chain takes in): chains between MatMuls,
  the chains dominating (on NUMPY alone about two thirds of the time).

Sessions, all through ``aioinfer.onnxruntime.InferenceSession`` on one NUMPY-backed Core:

- ``NUMPY``: the model on NUMPY alone, its compiled (numba) tier on (the default);
- ``NUMPY jit=0``: the same with the tier off (NUMPY's ``ENABLE_JIT`` false: what
  ``AIOINFER_JIT=0`` sets);
- ``EP+NUMPY``: the EP chosen with ``get_ep_devices`` + ``add_provider_for_devices``:
  HETERO gives it the chains and NUMPY the rest.

Each round runs every session ``--runs`` times, sessions in a rotated order; the medians of
the per-round means, their spread (max/min) and the ratios (median of the per-round ratios,
with its range) are printed, with the load average before and after. Outputs are checked
against NUMPY's first. ``--profile`` adds where the EP path's time goes (the fused kernel
alone, the EP's compute, a run) for the ``chain`` model.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import aioinfer
import aioinfer.onnxruntime as ort

EP = "FusedElementwise"
LIBRARY = "aioinfer.ort.ep.examples.fused_elementwise"
F32 = np.float32


class Builder:
    """Nodes and initializers with fresh names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def const(self, value: Any) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, F32), name))
        return name

    def op(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out


def chain_nodes(b: Builder, x: str, width: int, rng: np.random.Generator) -> str:
    """10 ops: affine (broadcast [width] gamma, beta), tanh-GELU with Pow(., 3), a scale."""
    g = b.const(1 + rng.standard_normal(width) / 8)
    h = b.op("Add", b.op("Mul", x, g), b.const(rng.standard_normal(width) / 8))
    cube = b.op("Mul", b.op("Pow", h, b.const(3.0)), b.const(0.044715))
    t = b.op("Tanh", b.op("Mul", b.op("Add", h, cube), b.const(0.7978845608)))
    return b.op("Mul", b.op("Mul", h, b.op("Add", t, b.const(1.0))), b.const(0.5))


def swish_nodes(b: Builder, x: str) -> str:
    """9 ops without a NUMPY pattern: scale/shift, swish, tanh, clip, leaky relu."""
    a = b.op("Add", b.op("Mul", x, b.const(1.5)), b.const(-0.25))
    s = b.op("Mul", a, b.op("Sigmoid", a))
    t = b.op("Mul", b.op("Tanh", s), b.const(2.0))
    c = b.op("Clip", t, b.const(-1.5), b.const(1.5))
    return b.op("Sub", b.op("LeakyRelu", c, alpha=0.1), x)


def model(kind: str, rows: int, width: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    b = Builder()
    if kind == "chain":
        y = chain_nodes(b, "x", width, rng)
    elif kind == "swish":
        y = swish_nodes(b, "x")
    elif kind == "blocks":
        h = "x"
        for _ in range(3):
            c = swish_nodes(b, chain_nodes(b, h, width, rng))
            down = b.const(rng.standard_normal((width, 64)) / np.sqrt(width))
            d = b.op("MatMul", c, down)
            e = b.op("Mul", d, b.op("Sigmoid", b.op("Mul", d, b.const(1.702))))
            up = b.const(rng.standard_normal((64, width)) / 8)
            h = b.op("Add", b.op("MatMul", e, up), h)
        y = h
    else:
        raise SystemExit(f"unknown model {kind!r}")
    assert b.nodes[-1].output[0] == y
    b.nodes[-1].output[0] = "y"
    shape = [1, rows, width]
    graph = helper.make_graph(b.nodes, kind,
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
                              initializer=b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def sessions(proto: bytes) -> dict[str, Any]:
    core = aioinfer.Core()
    core.set_property("CPU", {"MULTI_DEVICE_PRIORITIES": "NUMPY"})  # the CPU EP is NUMPY
    off = aioinfer.Core()
    off.set_property("NUMPY", {"ENABLE_JIT": False})
    numpy_ep = [("OpenVINOExecutionProvider", {"device_type": "NUMPY"})]
    options = ort.SessionOptions()
    options.add_provider_for_devices([d for d in ort.get_ep_devices() if d.ep_name == EP],
                                     {"min_chain": "2"})
    return {"NUMPY": ort.InferenceSession(proto, providers=numpy_ep, core=core),
            "NUMPY jit=0": ort.InferenceSession(proto, providers=numpy_ep, core=off),
            "EP+NUMPY": ort.InferenceSession(proto, options, core=core)}


def loadavg() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def bench(kind: str, rows: int, width: int, rounds: int, runs: int) -> dict[str, float]:
    proto = model(kind, rows, width)
    made = sessions(proto.SerializeToString())
    x = np.random.default_rng(1).standard_normal((1, rows, width)).astype(F32)
    feeds = {"x": x}
    expected = made["NUMPY"].run(None, feeds)[0]
    for label, session in made.items():
        got = session.run(None, feeds)[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=label)
    ep = made["EP+NUMPY"]
    parts = [m.device for m in ep.compiled_model.submodels()]
    labels = list(made)
    times: dict[str, list[float]] = {k: [] for k in labels}
    for r in range(rounds):
        order = labels[r % len(labels):] + labels[:r % len(labels)]
        for label in order:
            session = made[label]
            start = time.perf_counter()
            for _ in range(runs):
                session.run(None, feeds)
            times[label].append((time.perf_counter() - start) / runs * 1e3)
    ops = len(proto.graph.node)
    print(f"\n{kind}: {ops} nodes on [1,{rows},{width}] float32; EP session {ep.device}, "
          f"parts {parts}; {rounds} rounds x {runs} runs")
    med = {k: statistics.median(v) for k, v in times.items()}
    for label in labels:
        values = times[label]
        print(f"  {label:12s} median {med[label]:8.3f} ms  spread max/min "
              f"{max(values) / min(values):.2f}")
    ratios: dict[str, float] = {}
    for base in ("NUMPY", "NUMPY jit=0"):
        paired = [n / f for n, f in zip(times[base], times["EP+NUMPY"], strict=True)]
        ratios[base] = statistics.median(paired)
        print(f"  {base} / EP+NUMPY = {med[base] / med['EP+NUMPY']:.2f}x (per-round ratios "
              f"median {statistics.median(paired):.2f}x, range {min(paired):.2f}-"
              f"{max(paired):.2f})")
    return ratios


def _median_ms(fn: Callable[[], Any], n: int) -> float:
    ts = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - start)
    return statistics.median(ts) * 1e3


def profile(rows: int, width: int, n: int) -> None:
    """The chain model's EP path taken apart: the compiled kernel alone, the EP's compute
    (input checks, output buffers, the kernel), a whole session run."""
    from aioinfer.ort.ep.api import NodeComputeContext
    from aioinfer.ort.ep.plugin import EpCompiledModel

    proto = model("chain", rows, width).SerializeToString()
    made = sessions(proto)
    session = made["EP+NUMPY"]
    compiled = session.compiled_model
    found = [compiled] if isinstance(compiled, EpCompiledModel) else [
        m for m in compiled.submodels() if isinstance(m, EpCompiledModel)]
    node, info, _ = found[0].kernels[0]
    x = np.random.default_rng(1).standard_normal((1, rows, width)).astype(F32)
    out = np.empty_like(x)
    flat = x.reshape(-1)
    flat.flags.writeable = False
    kernel = info.kernel  # type: ignore[attr-defined]
    consts = info.constants  # type: ignore[attr-defined]
    kernel(flat, *consts, out.reshape(-1))
    print(f"\nprofile of the chain on [1,{rows},{width}] (median of {n}):")
    alone = _median_ms(lambda: kernel(flat, *consts, out.reshape(-1)), n)
    print(f"  fused kernel alone     {alone:7.3f} ms")
    state = info.create_state(NodeComputeContext(node.name))
    print(f"  EP compute             {_median_ms(lambda: info.compute(state, [x]), n):7.3f} ms")
    for label, s in made.items():
        run: Callable[[], Any] = functools.partial(s.run, None, {"x": x})
        print(f"  session.run {label:11s} {_median_ms(run, n):7.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", default="chain,swish,blocks")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    ort.register_execution_provider_library(EP, LIBRARY)
    print(f"load average before: {loadavg()}")
    for kind in args.models.split(","):
        bench(kind, args.rows, args.width, args.rounds, args.runs)
    if args.profile:
        profile(args.rows, args.width, 5 * args.rounds)
    print(f"\nload average after: {loadavg()}")


if __name__ == "__main__":
    main()
