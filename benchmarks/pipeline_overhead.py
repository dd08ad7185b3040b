"""Pipeline overhead on the demo: the streaming pipeline's throughput against the model's own.

    PYTHONPATH=. python benchmarks/pipeline_overhead.py --frames 600 --rounds 5

Per round, interleaved (the order rotates from round to round), on the same compiled model
(the demo's classifier with its PrePostProcessor in the graph), the same device and the same
``--requests`` in flight:

- ``infer_async bN``: ``--requests`` tasks, each awaiting ``request.infer_async`` on the
  video's frames decoded beforehand into memory, ``N`` frames stacked per inference (the
  model's standalone throughput; ``b1`` is the Done-when's baseline, one frame a request);
- ``decode``: the source alone (``VideoFile``: PyAV decoding and the RGB conversion on a
  worker thread), no inference: the rate the file can be read at;
- ``pipeline bN (memory)``: ``run_pipeline`` with ``batch=N`` from a ``Synthetic`` source
  over the same pre-decoded frames, top-3, JSON lines: the pipeline's machinery alone (the
  channels, stacking, the stream, postprocessing and writing), without decoding;
- ``pipeline bN (jsonl)``: ``run_pipeline`` from the MP4 file with ``batch=N``: decode on a
  worker, inference, top-3, JSON lines;
- ``pipeline bN (video)``: the same plus the annotated H.264 video (what ``aioinfer demo``
  does, with its default batch).

``--model cnn:image_size=160`` runs the same pipelines on a heavier built-in classifier (made
ready for frames with ``for_frames``) to show the overhead when inference dominates.

Prints each variant's median frames/s with its min-max spread and the median CPU time of the
whole process per frame (every thread; on a host shared with other work, where this process
gets about one core, throughput follows it), and per pipeline the median of
the per-round ratios to ``infer_async b1`` and to ``infer_async`` at the pipeline's batch (the
pipeline's own overhead: the same inferences, with decoding, postprocessing and writing
added). The host is shared and noisy: read the spread and the load printed with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import numpy as np

import aioinfer
from aioinfer.demo import prepared_model, write_sample_video
from aioinfer.pipelines import (
    Classify,
    JsonLinesSink,
    Sink,
    Source,
    Synthetic,
    VideoFile,
    VideoSink,
    run_pipeline,
)
from aioinfer.pipelines.sources import require_av, rgb_converter


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of ``path`` as ``H x W x 3`` uint8 RGB (as the pipeline's source does)."""
    av = require_av()
    rgb = rgb_converter(av)
    with av.open(str(path)) as container:
        return [rgb(f) for f in container.decode(video=0)]


async def standalone(compiled: aioinfer.CompiledModel, frames: list[np.ndarray],
                     requests: int, batch: int) -> float:
    """Frames per second of ``requests`` tasks awaiting ``infer_async`` on pre-stacked
    batches of ``batch`` frames."""
    inputs = [np.stack(frames[i:i + batch]) for i in range(0, len(frames), batch)]
    next_input = iter(inputs)

    async def worker() -> None:
        request = compiled.create_infer_request()
        for x in next_input:
            await request.infer_async(x)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(requests):
            tg.start_soon(worker)
    return len(frames) / (time.perf_counter() - start)


async def decode_only(video: Path) -> float:
    """Frames per second of the pipeline's source alone."""
    count = 0
    start = time.perf_counter()
    async for _ in VideoFile(video):
        count += 1
    return count / (time.perf_counter() - start)


async def pipeline(compiled: aioinfer.CompiledModel, video: Path | list[np.ndarray],
                   out: Path, requests: int, batch: int, annotated: bool,
                   expected: int) -> float:
    """Frames per second of ``run_pipeline`` from the file (or from decoded frames)."""
    sinks: list[Sink] = [JsonLinesSink(out / "r.jsonl")]
    if annotated:
        sinks.append(VideoSink(out / "a.mp4"))
    if isinstance(video, Path):
        source: Source = VideoFile(video)
    else:
        frames = video
        source = Synthetic(lambda: ((image, None) for image in frames))
    stats = await run_pipeline(compiled, source, sinks=sinks,
                               postprocess=Classify(3), requests=requests, batch=batch)
    if stats.delivered != expected or stats.dropped:
        raise RuntimeError(f"the lossless pipeline delivered {stats.delivered} of {expected}")
    return stats.fps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8,
                        help="frames per inference of the batched variants (the demo's: 8)")
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
    b, r, n = args.batch, args.requests, len(frames)
    variants: dict[str, Callable[[], Awaitable[float]]] = {
        "infer_async b1": lambda: standalone(compiled, frames, r, 1),
        f"infer_async b{b}": lambda: standalone(compiled, frames, r, b),
        "decode": lambda: decode_only(video),
        f"pipeline b{b} (memory)": lambda: pipeline(compiled, frames, out, r, b, False, n),
        "pipeline b1 (jsonl)": lambda: pipeline(compiled, video, out, r, 1, False, n),
        f"pipeline b{b} (jsonl)": lambda: pipeline(compiled, video, out, r, b, False, n),
        f"pipeline b{b} (video)": lambda: pipeline(compiled, video, out, r, b, True, n),
    }
    for fn in variants.values():  # warm-up: every shape compiled, every file format opened
        anyio.run(fn)
    load_before = os.getloadavg()[0]
    runs: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for k in range(args.rounds):
        for name in names[k % len(names):] + names[:k % len(names)]:
            before = time.process_time()
            runs[name].append(anyio.run(variants[name]))
            cpu[name].append((time.process_time() - before) / n * 1e3)
    load_after = os.getloadavg()[0]
    print(f"{args.model}: {args.frames} frames of 128x128, device {args.device}, {r} in "
          f"flight, {args.rounds} rounds interleaved (median, min-max); load average "
          f"{load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores")
    base1 = runs["infer_async b1"]
    for name, values in runs.items():
        med = statistics.median(values)
        line = (f"  {name:<22} {med:8.1f} frames/s  ({min(values):.1f}-{max(values):.1f})  "
                f"cpu {statistics.median(cpu[name]):.3f} ms/frame")
        if name.startswith("pipeline"):
            batch = int(name.split()[1][1:])
            same = runs[f"infer_async b{batch}"]
            to_b1 = statistics.median(v / w for v, w in zip(values, base1, strict=True))
            to_same = statistics.median(v / w for v, w in zip(values, same, strict=True))
            line += f"  x{to_b1:.2f} of infer_async b1, x{to_same:.2f} of b{batch}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
