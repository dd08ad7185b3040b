"""A streaming video-classification pipeline over a synthetic camera.

    frames (async generator, target fps) -> preprocess (resize, normalize, NCHW; worker thread)
        -> compiled.stream (up to N requests in flight, backpressure on the source, in order)
        -> postprocess (top-k; worker thread) -> sink (in frame order; fps and latency)

Run it with ``python -m pipelines.video_stream --frames 100``. The event loop only schedules:
drawing, resizing and top-k run on worker threads, inference on the device's executor. Works
on asyncio, uvloop and trio (anyio).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import numpy as np

import aioinfer
from aioinfer import models
from aioinfer.plugins.base import CompiledModel
from aioinfer.runtime.executors import Executor

T = TypeVar("T")

MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # ImageNet statistics, as torchvision
STD = np.array([0.229, 0.224, 0.225], np.float32)

WORKERS = Executor("video_stream", workers=2)
"""Threads for drawing, resizing and top-k, apart from the devices' executors."""


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on a pipeline worker thread (on asyncio, uvloop or trio)."""
    return await WORKERS.run(functools.partial(fn, *args))


@dataclass(frozen=True)
class Frame:
    """One captured frame: ``image`` is HxWx3 uint8; ``captured`` a ``perf_counter`` time."""

    index: int
    image: np.ndarray
    captured: float


@dataclass(frozen=True)
class FrameResult:
    """The top-k classes of one frame and its capture-to-result latency (seconds)."""

    index: int
    classes: tuple[int, ...]
    scores: tuple[float, ...]
    latency: float


@dataclass
class StreamStats:
    """What the sink saw."""

    frames: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    max_in_flight: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed if self.elapsed else 0.0

    def summary(self) -> str:
        lat = np.asarray(self.latencies or [0.0]) * 1e3
        return (f"{self.frames} frames in {self.elapsed:.2f} s: {self.fps:.1f} fps; latency "
                f"median {np.median(lat):.1f} ms, p90 {np.percentile(lat, 90):.1f} ms, max "
                f"{lat.max():.1f} ms; up to {self.max_in_flight} frames in flight")


# -- source -----------------------------------------------------------------------------------
def draw_frame(index: int, height: int = 480, width: int = 640, seed: int = 0) -> np.ndarray:
    """A procedural frame: a colour gradient that drifts with ``index``, a moving disc and
    seeded sensor noise. Deterministic for a given (index, size, seed)."""
    rng = np.random.default_rng((seed, index))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = index * 0.05
    red = 127.5 * (1 + np.sin(x / width * 2 * np.pi + phase))
    green = 127.5 * (1 + np.cos(y / height * 2 * np.pi - phase))
    blue = np.full_like(x, 255.0 * ((index * 7) % 64) / 63)
    cx = width * (0.5 + 0.35 * np.cos(phase * 3))
    cy = height * (0.5 + 0.35 * np.sin(phase * 2))
    disc = (x - cx) ** 2 + (y - cy) ** 2 < (min(height, width) / 6) ** 2
    image = np.stack([red, green, blue], axis=-1)
    image[disc] = (255.0, 255.0, 0.0)
    image += rng.normal(0, 8, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


async def synthetic_frames(count: int, *, height: int = 480, width: int = 640,
                           fps: float = 30.0, seed: int = 0) -> AsyncIterator[Frame]:
    """``count`` frames paced at ``fps`` (0: as fast as they can be drawn). A late consumer
    is not caught up with a burst: like a camera, the source simply runs late."""
    period = 1.0 / fps if fps > 0 else 0.0
    start = anyio.current_time()
    for index in range(count):
        if period:
            await anyio.sleep_until(start + index * period)
        image = await off_loop(draw_frame, index, height, width, seed)
        yield Frame(index, image, time.perf_counter())


# -- processing -------------------------------------------------------------------------------
def preprocess(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxWx3 uint8 -> 1x3xHxW float32: bilinear resize, scale to [0, 1], ImageNet normalize."""
    out_h, out_w = size
    in_h, in_w = image.shape[:2]
    ys = np.clip((np.arange(out_h) + 0.5) * in_h / out_h - 0.5, 0, in_h - 1)
    xs = np.clip((np.arange(out_w) + 0.5) * in_w / out_w - 0.5, 0, in_w - 1)
    y0, x0 = ys.astype(np.int64), xs.astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, in_h - 1), np.minimum(x0 + 1, in_w - 1)
    wy = (ys - y0).astype(np.float32)[:, None, None]
    wx = (xs - x0).astype(np.float32)[None, :, None]
    pixels = image.astype(np.float32)
    top = pixels[y0][:, x0] * (1 - wx) + pixels[y0][:, x1] * wx
    bottom = pixels[y1][:, x0] * (1 - wx) + pixels[y1][:, x1] * wx
    resized = top * (1 - wy) + bottom * wy
    normalized = (resized / 255.0 - MEAN) / STD
    return np.ascontiguousarray(normalized.transpose(2, 0, 1)[None], dtype=np.float32)


def top_k(probabilities: np.ndarray, k: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The ``k`` best classes of a ``[1, classes]`` output, best first."""
    row = np.asarray(probabilities).reshape(-1)
    best = np.argpartition(-row, min(k, row.size) - 1)[:k]
    best = best[np.argsort(-row[best], kind="stable")]
    return tuple(int(c) for c in best), tuple(float(row[c]) for c in best)


def input_size(compiled: CompiledModel) -> tuple[int, int]:
    """The (height, width) a compiled NCHW image model expects."""
    shape = compiled.input().shape
    if shape is None or len(shape) != 4 or not all(isinstance(d, int) for d in shape[2:]):
        raise ValueError(f"the model input {compiled.input()} is not NCHW with a static size")
    return int(shape[2]), int(shape[3])  # type: ignore[arg-type]


# -- the pipeline -----------------------------------------------------------------------------
async def run_pipeline(
    compiled: CompiledModel,
    frames: AsyncIterator[Frame],
    *,
    requests: int = 4,
    k: int = 5,
    sink: Callable[[FrameResult], None] | None = None,
) -> tuple[list[FrameResult], StreamStats]:
    """Classify every frame, up to ``requests`` at once, and deliver results in frame order.

    The frames go through ``compiled.stream``: it pulls the next frame only when fewer than
    ``requests`` frames are between pulled and delivered (a fast source is slowed to the
    model's pace) and yields the outputs in frame order. ``sink`` is called on the loop thread
    with each result (keep it cheap). Returns all results and the stream's statistics.
    """
    if requests < 1:
        raise ValueError(f"requests must be >= 1, got {requests}")
    size = input_size(compiled)
    stats = StreamStats()
    results: list[FrameResult] = []
    submitted: deque[Frame] = deque()  # handed to the stream, result not delivered yet

    async def tensors() -> AsyncIterator[np.ndarray]:
        try:
            async for frame in frames:
                tensor = await off_loop(preprocess, frame.image, size)
                submitted.append(frame)
                stats.max_in_flight = max(stats.max_in_flight, len(submitted))
                yield tensor
        finally:
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                await aclose()

    start = time.perf_counter()
    async with aclosing(compiled.stream(tensors(), max_in_flight=requests)) as outputs:
        async for output in outputs:
            frame = submitted.popleft()
            classes, scores = await off_loop(top_k, output[0], k)
            result = FrameResult(frame.index, classes, scores,
                                 time.perf_counter() - frame.captured)
            results.append(result)
            stats.frames += 1
            stats.latencies.append(result.latency)
            stats.elapsed = time.perf_counter() - start
            if sink is not None:
                sink(result)
    return results, stats


# -- command line -----------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.video_stream",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--fps", type=float, default=30.0, help="source rate (0: unpaced)")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--image-size", type=int, default=224, help="model input size")
    parser.add_argument("-d", "--device", default="CPU")
    parser.add_argument("--requests", type=int, default=4, help="frames in flight")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "trio"], default="asyncio")
    parser.add_argument("--every", type=int, default=10, help="print every Nth result")
    args = parser.parse_args(argv)

    compiled = aioinfer.Core().compile_model(models.cnn(image_size=args.image_size),
                                             args.device, {"PERFORMANCE_HINT": "THROUGHPUT"})

    def show(result: FrameResult) -> None:
        if result.index % max(args.every, 1) == 0:
            best = ", ".join(f"{c}:{s:.4f}" for c, s in zip(result.classes, result.scores,
                                                           strict=True))
            print(f"frame {result.index:5d}  {result.latency * 1e3:7.1f} ms  top: {best}",
                  flush=True)

    async def go() -> StreamStats:
        source = synthetic_frames(args.frames, height=args.height, width=args.width,
                                  fps=args.fps)
        _, stats = await run_pipeline(compiled, source, requests=args.requests, k=args.top_k,
                                      sink=show)
        return stats

    backend = "trio" if args.loop == "trio" else "asyncio"
    options = {"use_uvloop": True} if args.loop == "uvloop" else {}
    stats = anyio.run(go, backend=backend, backend_options=options)
    print(stats.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
