"""PrePostProcessor in the plan against the same preprocessing done in NumPy per frame.

A u8 NHWC BGR camera frame (``--frame``, default 480x640) goes to a float32 NCHW RGB model
input (``--size``, default 224): convert to f32, BGR -> RGB, bilinear resize, mean, scale,
NCHW. Four variants run on NUMPY, interleaved round by round (so load from elsewhere on the
machine hits each alike), each ``--iters`` inferences per round:

* ``ppp``: the preprocessing alone, built into an otherwise empty graph (Identity);
* ``numpy``: the same steps by hand in NumPy (what a user writes before ``infer``);
* ``ppp+model``: a ResNet-style CNN (``aioinfer.models.cnn``) with the steps built in;
* ``numpy+model``: the NumPy steps, then the plain CNN.

Reported: the median per-frame time of each (and its spread over rounds: min-max of round
medians), the ratios numpy/ppp and (numpy+model)/(ppp+model), and the largest difference
between the two paths' model outputs (the built steps must match within 1e-5).

    python benchmarks/preprocess.py --rounds 7 --iters 20
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout

import aioinfer  # noqa: E402
from aioinfer import models  # noqa: E402
from aioinfer.preprocess import ColorFormat, PrePostProcessor, ResizeAlgorithm  # noqa: E402

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
SCALE = np.array([58.395, 57.12, 57.375], np.float32)


def resize_linear(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear NHWC resize on half-pixel coordinates: gathers of two rows, then columns."""

    def taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coord = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        lo = np.floor(coord).astype(np.int64)
        return lo, np.minimum(lo + 1, n_in - 1), (coord - lo).astype(x.dtype)

    y0, y1, wy = taps(x.shape[1], height)
    x0, x1, wx = taps(x.shape[2], width)
    rows = x[:, y0] * (1 - wy)[:, None, None] + x[:, y1] * wy[:, None, None]
    return rows[:, :, x0] * (1 - wx)[:, None] + rows[:, :, x1] * wx[:, None]


def numpy_steps(frame: np.ndarray, size: int) -> np.ndarray:
    x = frame.astype(np.float32)[..., ::-1]
    x = resize_linear(x, size, size)
    x = (x - MEAN) / SCALE
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def with_steps(model: aioinfer.Model) -> aioinfer.Model:
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type("u8").set_layout("NHWC") \
        .set_color_format(ColorFormat.BGR).set_spatial_dynamic_shape()
    ppp.input().preprocess().convert_element_type("f32").convert_color(ColorFormat.RGB) \
        .resize(ResizeAlgorithm.LINEAR).mean(MEAN).scale(SCALE)
    ppp.input().model().set_layout("NCHW")
    return ppp.build()


def identity(size: int) -> aioinfer.Model:
    shape = [1, 3, size, size]
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["out"])], "identity",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return aioinfer.Core().read_model(proto)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", default="480x640", help="frame HxW (default 480x640)")
    parser.add_argument("--size", type=int, default=224, help="model input size")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iters", type=int, default=20, help="frames per variant per round")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.frame.split("x"))
    core = aioinfer.Core()
    plain = core.read_model(models.cnn(image_size=args.size, num_classes=1000))
    frame = np.random.default_rng(0).integers(0, 256, (1, height, width, 3), dtype=np.uint8)
    requests = {
        "ppp": core.compile_model(with_steps(identity(args.size)), "NUMPY"),
        "ppp+model": core.compile_model(with_steps(plain), "NUMPY"),
        "plain": core.compile_model(plain, "NUMPY"),
    }
    ppp_only = requests["ppp"].create_infer_request()
    ppp_model = requests["ppp+model"].create_infer_request()
    plain_model = requests["plain"].create_infer_request()
    size = args.size
    variants: dict[str, Callable[[], Any]] = {
        "ppp": lambda: ppp_only.infer({"input": frame}),
        "numpy": lambda: numpy_steps(frame, size),
        "ppp+model": lambda: ppp_model.infer({"input": frame}),
        "numpy+model": lambda: plain_model.infer({"input": numpy_steps(frame, size)}),
    }
    steps_diff = float(np.abs(ppp_only.infer({"input": frame})["out"]
                              - numpy_steps(frame, size)).max())
    model_diff = float(np.abs(ppp_model.infer({"input": frame})[0]
                              - plain_model.infer({"input": numpy_steps(frame, size)})[0]).max())
    rounds: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm up (shape-specialised plans, caches)
        for _ in range(3):
            fn()
    for _ in range(args.rounds):
        for name, fn in variants.items():
            times = []
            for _ in range(args.iters):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
            rounds[name].append(statistics.median(times))
    median = {name: statistics.median(values) for name, values in rounds.items()}
    print(f"frame u8 1x{height}x{width}x3 BGR -> f32 1x3x{size}x{size} RGB, NUMPY, "
          f"{args.rounds} rounds x {args.iters} frames (shared host: see spread)")
    print(f"{'variant':<12} {'median ms':>10} {'round medians min-max':>24}")
    for name, values in rounds.items():
        print(f"{name:<12} {median[name] * 1e3:>10.3f} "
              f"{min(values) * 1e3:>11.3f} - {max(values) * 1e3:.3f}")
    print(f"steps alone:  numpy / ppp = {median['numpy'] / median['ppp']:.2f}x")
    print(f"with model:   (numpy+model) / (ppp+model) = "
          f"{median['numpy+model'] / median['ppp+model']:.2f}x")
    print(f"max |ppp - numpy|: steps {steps_diff:.2e}, model outputs {model_diff:.2e}")


if __name__ == "__main__":
    main()
