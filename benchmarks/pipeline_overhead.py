"""Pipeline overhead on the demo: the streaming pipeline's throughput against the model's own.

    PYTHONPATH=. python benchmarks/pipeline_overhead.py --frames 600 --rounds 5

Per round, interleaved, on the same compiled model (the demo's classifier with its
PrePostProcessor in the graph) and the same device:

- ``infer_async``: ``--requests`` tasks, each awaiting ``request.infer_async`` on frames
  decoded beforehand into memory (the model's standalone throughput);
- ``pipeline (jsonl)``: ``run_pipeline`` from the MP4 file: decode on a worker, inference,
  top-3, JSON lines;
- ``pipeline (video)``: the same plus the annotated H.264 video (what ``aioinfer demo`` does).

``--model cnn:image_size=160`` runs the same pipelines on a heavier built-in classifier (made
ready for frames with ``for_frames``) to show the overhead when inference dominates.

Prints each variant's median frames/s with its min-max spread and the ratio of medians to
``infer_async``. The host is shared and noisy: read the spread.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np

import aioinfer
from aioinfer.demo import prepared_model, write_sample_video
from aioinfer.pipelines import Classify, JsonLinesSink, VideoFile, VideoSink, run_pipeline


def decode_all(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24")[None] for f in container.decode(video=0)]


async def standalone(compiled: aioinfer.CompiledModel, frames: list[np.ndarray],
                     requests: int) -> float:
    next_frame = iter(range(len(frames)))

    async def worker() -> None:
        request = compiled.create_infer_request()
        for k in next_frame:
            await request.infer_async(frames[k])

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(requests):
            tg.start_soon(worker)
    return len(frames) / (time.perf_counter() - start)


async def pipeline(compiled: aioinfer.CompiledModel, video: Path, out: Path, requests: int,
                   annotated: bool) -> float:
    sinks = [JsonLinesSink(out / "r.jsonl")]
    if annotated:
        sinks.append(VideoSink(out / "a.mp4"))  # type: ignore[arg-type]
    stats = await run_pipeline(compiled, VideoFile(video), sinks=sinks,
                               postprocess=Classify(3), requests=requests)
    return stats.fps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument("-d", "--device", default="CPU")
    parser.add_argument("--model", default="digits",
                        help="digits (the demo's) or a built-in model, e.g. cnn:image_size=160")
    args = parser.parse_args(argv)

    out = Path(tempfile.mkdtemp())
    video = out / "sample.mp4"
    write_sample_video(video, args.frames)
    frames = decode_all(video)
    core = aioinfer.Core()
    if args.model == "digits":
        model = prepared_model()
    else:
        from aioinfer.pipelines.prepare import for_frames
        from aioinfer.tools.model_source import load_model

        model = for_frames(load_model(core, args.model))
    compiled = core.compile_model(model, args.device, {"PERFORMANCE_HINT": "THROUGHPUT"})
    variants = {
        "infer_async": lambda: standalone(compiled, frames, args.requests),
        "pipeline (jsonl)": lambda: pipeline(compiled, video, out, args.requests, False),
        "pipeline (video)": lambda: pipeline(compiled, video, out, args.requests, True),
    }
    runs: dict[str, list[float]] = {name: [] for name in variants}
    anyio.run(variants["infer_async"])  # warm-up
    for _ in range(args.rounds):
        for name, fn in variants.items():
            runs[name].append(anyio.run(fn))
    base = statistics.median(runs["infer_async"])
    print(f"{args.model}: {args.frames} frames of 128x128, device {args.device}, "
          f"{args.requests} in flight, {args.rounds} rounds (median, min-max)")
    for name, values in runs.items():
        med = statistics.median(values)
        print(f"  {name:<18} {med:8.1f} frames/s  ({min(values):.1f}-{max(values):.1f})  "
              f"ratio {med / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
