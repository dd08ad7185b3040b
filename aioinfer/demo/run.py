"""The demo run: render the sample video from held-out digits, classify every frame of it
through the streaming pipeline, write the annotated video and the results."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import anyio

from ..core import Core
from ..pipelines import (
    Classify,
    FrameResult,
    JsonLinesSink,
    PipelineStats,
    Sink,
    Source,
    Synthetic,
    VideoFile,
    VideoSink,
    run_pipeline,
)
from ..pipelines.sources import require_av
from ..pipelines.workers import off_loop
from .assets import held_out_digits, prepared_model
from .render import FRAME_SIZE, sample_frames

FPS = 30
HOLD = 6
"""Frames each digit is shown for."""
BATCH = 8
"""Frames per inference: the classifier is small, so most of a one-frame inference is fixed
cost; 8 frames a request give about 2.5x the frames per second of one (benchmarks/
pipeline_overhead.py)."""
SAMPLE_OPTIONS = {"preset": "veryfast", "crf": "23", "tune": "fastdecode"}
"""x264 options of the sample video. ``fastdecode`` (no CABAC, no deblocking) and crf 23
halve to third the decoding time of the noisy frames against crf 18 (0.2 against 0.35-0.7
ms a 128x128 frame, measured on 2 shared cores) for a larger file, with the noise still in
it: the model's accuracy on the decoded video is the same (98.6-98.8%, 2160 frames)."""


def _has_av() -> bool:
    try:
        require_av()
    except Exception:
        return False
    return True


def default_frames() -> int:
    """Every held-out digit once: ``HOLD`` frames each."""
    return len(held_out_digits()[1]) * HOLD


def write_sample_video(path: str | Path, frames: int | None = None, *, seed: int = 0,
                       fps: int = FPS) -> list[int]:
    """Render ``frames`` frames of held-out digits (:func:`~aioinfer.demo.render.
    sample_frames`) into an H.264 MP4 at ``path`` (PyAV); returns each frame's label."""
    av = require_av()
    images, labels = held_out_digits()
    count = default_frames() if frames is None else frames
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    known: list[int] = []
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps), options=SAMPLE_OPTIONS)
        stream.pix_fmt = "yuv420p"
        stream.height = stream.width = FRAME_SIZE
        for image, label in sample_frames(images, labels, count, hold=HOLD, seed=seed):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
            known.append(label)
        for packet in stream.encode():
            container.mux(packet)
    return known


@dataclass
class DemoReport:
    """What a demo run produced."""

    device: str
    stats: PipelineStats
    sample_video: Path | None
    annotated_video: Path | None
    results: Path
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, **self.stats.as_dict(),
                "sample_video": None if self.sample_video is None else str(self.sample_video),
                "annotated_video": None if self.annotated_video is None
                else str(self.annotated_video), "results": str(self.results),
                "notes": self.notes}

    def to_json(self) -> str:
        return json.dumps(self.as_dict())


async def run_demo(out_dir: str | Path = "aioinfer-demo", *, frames: int | None = None,
                   device: str = "CPU", requests: int = 0, batch: int = BATCH, seed: int = 0,
                   core: Core | None = None, stats: PipelineStats | None = None,
                   on_result: Callable[[FrameResult], None] | None = None,
                   on_start: Callable[[int], None] | None = None) -> DemoReport:
    """Run the demo into ``out_dir``: ``sample.mp4`` (rendered here, lossless mode,
    ``batch`` frames an inference), ``annotated.mp4`` and ``results.jsonl``. Without PyAV
    the frames are rendered straight into the pipeline and no video is written (the
    report's ``notes`` say so).
    ``on_start(frames)`` is called once the frame count is known (a progress bar's total)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    count = default_frames() if frames is None else frames
    if count < 1:
        raise ValueError(f"frames must be >= 1, got {count}")
    core = core or Core()
    compiled = await off_loop(lambda: core.compile_model(
        prepared_model(), device, {"PERFORMANCE_HINT": "THROUGHPUT"}))
    notes: list[str] = []
    sinks: list[Sink] = [JsonLinesSink(out / "results.jsonl")]
    sample: Path | None = None
    annotated: Path | None = None
    source: Source
    if _has_av():
        sample, annotated = out / "sample.mp4", out / "annotated.mp4"
        labels = await off_loop(lambda: write_sample_video(sample, count, seed=seed))
        source = VideoFile(sample, labels=labels)
        sinks.insert(0, VideoSink(annotated, fps=FPS))
    else:
        images, labels_ = held_out_digits()
        source = Synthetic(lambda: sample_frames(images, labels_, count, hold=HOLD,
                                                 seed=seed))
        notes.append("PyAV is not installed: frames rendered in memory, no video written "
                     "(pip install 'aioinfer[video]')")
    if on_start is not None:
        on_start(count)
    try:
        stats = await run_pipeline(compiled, source, sinks=sinks, postprocess=Classify(3),
                                   requests=requests, batch=batch, stats=stats,
                                   on_result=on_result)
    finally:
        with anyio.CancelScope(shield=True):
            await off_loop(compiled.release)
    return DemoReport(device, stats, sample, annotated, out / "results.jsonl", notes)
