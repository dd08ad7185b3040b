"""The streaming video pipeline: every frame gets its own, correct result, in order."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import aclosing
from pathlib import Path

import numpy as np
import pytest

import aioinfer
from aioinfer import models
from pipelines.video_stream import (
    FrameResult,
    draw_frame,
    preprocess,
    run_pipeline,
    synthetic_frames,
    top_k,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compiled() -> aioinfer.CompiledModel:
    model = models.cnn(image_size=64, widths=(8, 16), num_classes=100)
    return aioinfer.Core().compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})


@pytest.mark.anyio
async def test_twenty_frames_each_produce_their_result_in_order(
    compiled: aioinfer.CompiledModel,
) -> None:
    seen: list[int] = []

    def sink(result: FrameResult) -> None:
        seen.append(result.index)

    frames = synthetic_frames(20, height=96, width=128, fps=0, seed=5)
    results, stats = await run_pipeline(compiled, frames, requests=3, k=3, sink=sink)
    assert [r.index for r in results] == list(range(20)) == seen
    assert stats.frames == 20 and stats.fps > 0 and 1 <= stats.max_in_flight <= 3
    assert all(r.latency > 0 for r in results)
    # Each result belongs to its own frame: recompute frame by frame, synchronously.
    for result in results:
        tensor = preprocess(draw_frame(result.index, 96, 128, seed=5), (64, 64))
        classes, scores = top_k(compiled(tensor)[0], 3)
        assert result.classes == classes
        np.testing.assert_allclose(result.scores, scores, rtol=1e-6)
    assert len({r.classes for r in results}) > 1  # frames differ, and so do their results


@pytest.mark.anyio
async def test_source_keeps_its_frame_rate() -> None:
    start = time.perf_counter()
    async for frame in synthetic_frames(5, height=16, width=16, fps=50):
        # Frame i is not captured before its slot at i / fps (clock granularity aside).
        assert frame.captured - start >= frame.index / 50 - 2e-3


def test_preprocess_layout_and_normalization() -> None:
    image = np.zeros((30, 40, 3), np.uint8)
    image[..., 0] = 255
    tensor = preprocess(image, (8, 16))
    assert tensor.shape == (1, 3, 8, 16) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, 0], (1 - 0.485) / 0.229, rtol=1e-5)
    np.testing.assert_allclose(tensor[0, 1], (0 - 0.456) / 0.224, rtol=1e-5)


def test_command_line_runs() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.video_stream", "--frames", "12", "--fps", "0",
         "--image-size", "32", "--height", "48", "--width", "64", "--every", "4"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("frame ") == 3
    assert "12 frames in" in proc.stdout


@pytest.mark.anyio
async def test_a_failing_sink_stops_the_stream_and_closes_the_source(
    compiled: aioinfer.CompiledModel,
) -> None:
    pulled: list[int] = []
    delivered: list[int] = []
    closed = False

    async def frames():
        nonlocal closed
        try:
            async with aclosing(synthetic_frames(50, height=32, width=32, fps=0)) as source:
                async for frame in source:
                    pulled.append(frame.index)
                    yield frame
        finally:
            closed = True

    def sink(result: FrameResult) -> None:
        delivered.append(result.index)
        if result.index == 4:
            raise RuntimeError("sink is full")

    with pytest.raises(RuntimeError, match="sink is full"):
        await run_pipeline(compiled, frames(), requests=2, k=1, sink=sink)
    assert closed
    # backpressure: a frame is pulled only while fewer than 2 are between pulled and delivered
    assert delivered == [0, 1, 2, 3, 4] and len(pulled) <= len(delivered) + 2, pulled
