"""``aioinfer pipeline``: a source, a classifier made ready for frames, and the sinks."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import anyio

from ..core import Core
from ..pipelines import (
    Camera,
    Classify,
    FrameResult,
    ImageFolder,
    JsonLinesSink,
    PipelineStats,
    Sink,
    Source,
    VideoFile,
    VideoSink,
    run_pipeline,
)
from ..pipelines.prepare import for_frames
from ..pipelines.workers import off_loop


def open_source(spec: str) -> Source:
    """``camera:/dev/video0`` (or ``camera:DEVICE:FORMAT``), an image folder, or a video."""
    if spec.startswith("camera:"):
        device, _, fmt = spec[len("camera:"):].partition("::")
        return Camera(device, format=fmt or "v4l2")
    if Path(spec).is_dir():
        return ImageFolder(spec)
    return VideoFile(spec)


async def run_pipeline_command(args: argparse.Namespace, stats: PipelineStats,
                               on_result: Callable[[FrameResult], None],
                               on_start: Callable[[int | None], None]) -> PipelineStats:
    """Build, run and release; the frame count (for the bar) is known for files."""
    source = open_source(args.input)

    def compile_() -> object:
        core = Core()
        if args.model == "digits":
            from ..demo import prepared_model

            model = prepared_model()
        else:
            base = core.read_model(args.model)
            mean = args.mean if args.mean is None or len(args.mean) > 1 else args.mean[0]
            scale = args.scale if len(args.scale) > 1 else args.scale[0]
            model = for_frames(base, layout=args.layout, scale=scale, mean=mean)
        return core.compile_model(model, args.device, {"PERFORMANCE_HINT": "THROUGHPUT"})

    compiled = await off_loop(compile_)
    sinks: list[Sink] = []
    if args.output:
        sinks.append(VideoSink(args.output, fps=getattr(source, "fps", 0.0) or 30.0))
    if args.jsonl:
        sinks.append(JsonLinesSink(args.jsonl))
    total = getattr(source, "frames", None) or len(getattr(source, "files", ())) or None
    on_start(total)
    try:
        return await run_pipeline(compiled, source, sinks=sinks, mode=args.mode,
                                  postprocess=Classify(args.top_k), requests=args.requests,
                                  batch=args.batch, stats=stats, on_result=on_result)
    finally:
        with anyio.CancelScope(shield=True):
            await off_loop(compiled.release)  # type: ignore[attr-defined]
