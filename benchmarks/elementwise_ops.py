"""Time NUMPY element-wise/activation/cast/reduce kernels against single-op onnxruntime models.

Usage: ``python benchmarks/elementwise_ops.py [-k SUBSTRING] [--repeat N]``. Each case is a
one-node model compiled by our plan compiler and by onnxruntime (intra-op threads 1 and 2);
the table shows the best-of-N milliseconds per run and our time over onnxruntime's.
"""

from __future__ import annotations

import argparse
import functools
import timeit
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime
from onnx import helper

from aioinfer.plugins.numpy.compiler import compile_graph

SHAPES = {"bert": (1, 128, 768), "ffn": (8, 128, 3072), "resnet": (1, 64, 56, 56)}
rng = np.random.default_rng(0)


@dataclass
class Case:
    """One op on one input shape; extra inputs are constant initializers of the graph."""

    op: str
    shape: str
    attrs: dict[str, Any] = field(default_factory=dict)
    second: str | None = None  # "same" (full tensor), "row" (broadcast last dim), "scalar"
    inits: dict[str, np.ndarray] = field(default_factory=dict)
    to: type | None = None  # Cast target
    label: str = ""

    @property
    def name(self) -> str:
        return f"{self.label or self.op}[{self.shape}]"


def _input(case: Case) -> dict[str, npt.NDArray[Any]]:
    x = rng.standard_normal(SHAPES[case.shape]).astype(np.float32)
    feeds: dict[str, npt.NDArray[Any]] = {"x": x}
    if case.second == "same":
        feeds["b"] = rng.standard_normal(x.shape).astype(np.float32) + 3.0
    elif case.second == "row":
        feeds["b"] = rng.standard_normal(x.shape[-1:]).astype(np.float32) + 3.0
    elif case.second == "cond":
        feeds["c"] = x > 0.3
        feeds["b"] = rng.standard_normal(x.shape).astype(np.float32)
    return feeds


def _model(case: Case, feeds: dict[str, np.ndarray]) -> onnx.ModelProto:
    names = list(feeds) if case.second != "cond" else ["c", "x", "b"]
    inits = [onnx.numpy_helper.from_array(v, k) for k, v in case.inits.items()]
    attrs = dict(case.attrs)
    if case.to is not None:
        attrs["to"] = helper.np_dtype_to_tensor_dtype(np.dtype(case.to))
    node = helper.make_node(case.op, names + list(case.inits), ["y"], **attrs)
    ins = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    out = helper.make_value_info("y", onnx.TypeProto())
    graph = helper.make_graph([node], "g", ins, [out], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _best_ms(fn: Callable[[], Any], repeat: int) -> float:
    number = 1
    while timeit.timeit(fn, number=number) < 0.05 and number < 1000:
        number *= 2
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e3


def _ort(model: onnx.ModelProto, threads: int) -> onnxruntime.InferenceSession:
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(model.SerializeToString(), opts,
                                        providers=["CPUExecutionProvider"])


def cases() -> list[Case]:
    axes = np.array([-1], dtype=np.int64)
    out: list[Case] = []
    for shape in SHAPES:
        out += [
            Case("Add", shape, second="row"), Case("Mul", shape, second="same"),
            Case("Div", shape, second="row"), Case("Pow", shape, second="row",
                                                   label="Pow^2"),
            Case("Clip", shape, inits={"lo": np.array(-1, np.float32),
                                       "hi": np.array(1, np.float32)}),
            Case("Where", shape, second="cond"),
            Case("Relu", shape), Case("Sigmoid", shape), Case("Tanh", shape),
            Case("Erf", shape), Case("Gelu", shape), Case("Gelu", shape,
                                                          attrs={"approximate": "tanh"},
                                                          label="GeluTanh"),
            Case("LeakyRelu", shape), Case("Sqrt", shape), Case("Exp", shape),
            Case("Cast", shape, to=np.float16, label="Cast->f16"),
            Case("Cast", shape, to=np.int64, label="Cast->i64"),
            Case("ReduceMean", shape, inits={"axes": axes}),
            Case("ReduceSum", shape, inits={"axes": axes}),
            Case("ReduceMax", shape, inits={"axes": axes}),
            Case("ReduceL2", shape, inits={"axes": axes}),
            Case("ReduceLogSumExp", shape, inits={"axes": axes}),
            Case("ReduceSumSquare", shape, inits={"axes": axes}),
            Case("Softplus", shape), Case("HardSigmoid", shape),
        ]
    return out


def _fix_pow(case: Case, feeds: dict[str, np.ndarray]) -> None:
    if case.label == "Pow^2":
        feeds["b"] = np.full(feeds["b"].shape, 2.0, np.float32)
        feeds["x"] = np.abs(feeds["x"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{'case':28} {'ours':>8} {'ort1':>8} {'ort2':>8} {'x1':>6} {'x2':>6}")
    for case in cases():
        if args.k.lower() not in case.name.lower():
            continue
        feeds = _input(case)
        _fix_pow(case, feeds)
        model = _model(case, feeds)
        plan = compile_graph(model.graph, {"": 21})
        values = list(feeds.values())
        ref = _ort(model, 1).run(None, feeds)[0]
        got = np.asarray(plan.run(values)[0])
        assert got.dtype == ref.dtype and got.shape == ref.shape, (case.name, got.dtype)
        t_ours = _best_ms(functools.partial(plan.run, values), args.repeat)
        times = []
        for threads in (1, 2):
            sess = _ort(model, threads)
            times.append(_best_ms(functools.partial(sess.run, None, feeds), args.repeat))
        print(f"{case.name:28} {t_ours:8.3f} {times[0]:8.3f} {times[1]:8.3f} "
              f"{t_ours / times[0]:6.2f} {t_ours / times[1]:6.2f}", flush=True)


if __name__ == "__main__":
    main()
