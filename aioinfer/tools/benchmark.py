"""Throughput and latency of a compiled model, in the style of OpenVINO's benchmark_app.

The sync API calls ``request.infer()`` in a loop; the async API keeps ``nireq`` requests in
flight, each a task awaiting ``request.infer_async()`` (asyncio by default, or uvloop / trio).
The first inference is timed on its own and left out of the statistics.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio
import numpy as np

from .. import properties as P
from ..core import Core
from ..plugins.base import CompiledModel
from ..runtime.request import InferRequest
from .model_source import apply_shapes, input_data, load_model, parse_shapes
from .progress import ProgressBar

DEFAULT_SECONDS = 10.0


@dataclass
class BenchmarkConfig:
    """What to benchmark and how (the CLI's arguments)."""

    model: str = "cnn"
    device: str = "CPU"
    api: str = "async"  # sync | async
    hint: str | None = None  # latency | throughput | cumulative_throughput | none
    nstreams: int | None = None
    nireq: int | None = None
    seconds: float | None = None
    niter: int | None = None
    shape: str | None = None
    perf_counts: bool = False
    loop: str = "asyncio"  # asyncio | uvloop | trio
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.api not in ("sync", "async"):
            raise ValueError(f"api must be 'sync' or 'async', got {self.api!r}")
        if self.loop not in ("asyncio", "uvloop", "trio"):
            raise ValueError(f"loop must be asyncio, uvloop or trio, got {self.loop!r}")
        if self.hint is None:  # benchmark_app's defaults
            self.hint = "latency" if self.api == "sync" else "throughput"
        self.hint = self.hint.lower()
        for name in ("nstreams", "nireq", "niter"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"seconds must be > 0, got {self.seconds}")
        if self.seconds is None and self.niter is None:
            self.seconds = DEFAULT_SECONDS


@dataclass
class BenchmarkReport:
    """Measurements of one run (times in milliseconds)."""

    model: str
    device: str
    api: str
    hint: str
    nireq: int
    streams: int | None
    input_shapes: dict[str, list[int]]
    batch: int
    compile_ms: float
    first_inference_ms: float
    iterations: int
    duration_s: float
    latency_ms: dict[str, float]
    throughput_fps: float
    peak_memory_mib: float
    loop: str | None = None
    perf_counts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=2)
            handle.write("\n")


Log = Callable[[str], None]


def benchmark(config: BenchmarkConfig, log: Log | None = None) -> BenchmarkReport:
    """Compile ``config.model`` on ``config.device``, run it, and measure."""
    say = log or (lambda _: None)
    core = Core()
    model = load_model(core, config.model)
    if config.shape:
        apply_shapes(model, parse_shapes(config.shape))
    say(f"Model {config.model!r}: inputs {model.inputs}")
    settings: dict[str, Any] = {}
    if config.hint and config.hint != "none":
        settings[P.PERFORMANCE_HINT] = config.hint.upper()
    if config.nstreams is not None:
        settings[P.NUM_STREAMS] = config.nstreams
    if config.perf_counts:
        settings[P.PERF_COUNT] = True
    start = time.perf_counter()
    compiled = core.compile_model(model, config.device, settings)
    compile_ms = (time.perf_counter() - start) * 1e3
    say(f"Compiled for {config.device} in {compile_ms:.2f} ms")

    feeds = input_data(model, seed=config.seed)
    nireq = 1 if config.api == "sync" else config.nireq or _optimal_requests(compiled)
    requests = [compiled.create_infer_request() for _ in range(nireq)]
    for request in requests:
        request.set_input_tensors(feeds)
    start = time.perf_counter()
    requests[0].infer()
    first_ms = (time.perf_counter() - start) * 1e3
    say(f"First inference took {first_ms:.2f} ms")

    mode = f"{config.api} API, {nireq} request(s)"
    limit = (f"{config.niter} iterations" if config.niter and not config.seconds
             else f"{config.seconds:g} s")
    say(f"Benchmarking in {mode} for {limit}")
    bar = _progress_bar(config)
    runner = _Runner(config, bar)
    try:
        if config.api == "sync":
            runner.run_sync(requests[0])
        else:
            backend, options = _backend(config.loop)
            anyio.run(runner.run_async, requests, backend=backend, backend_options=options)
    finally:
        bar.close()
    return _report(config, model_inputs=feeds, compiled=compiled, compile_ms=compile_ms,
                   first_ms=first_ms, runner=runner, nireq=nireq,
                   perf=requests[0].profiling_info if config.perf_counts else [])


def _optimal_requests(compiled: CompiledModel) -> int:
    try:
        return max(1, int(compiled.get_property(P.OPTIMAL_NUMBER_OF_INFER_REQUESTS)))
    except Exception:  # a plugin without the property: one request
        return 1


def _progress_bar(config: BenchmarkConfig) -> ProgressBar:
    if config.seconds:
        return ProgressBar(config.seconds, "s", enabled=config.progress)
    return ProgressBar(float(config.niter or 1), "it", enabled=config.progress)


def _backend(loop: str) -> tuple[str, dict[str, Any]]:
    if loop == "uvloop":
        return "asyncio", {"use_uvloop": True}
    return loop, {}


class _Runner:
    """The measuring loops; stops at ``niter`` iterations or after ``seconds``."""

    def __init__(self, config: BenchmarkConfig, bar: ProgressBar) -> None:
        self.niter = config.niter
        self.seconds = config.seconds
        self.bar = bar
        self.latencies: list[float] = []
        self.started = 0
        self.t0 = self.t1 = 0.0

    def _claim(self) -> bool:
        if self.niter is not None and self.started >= self.niter:
            return False
        if self.seconds is not None and time.perf_counter() - self.t0 >= self.seconds:
            return False
        self.started += 1
        return True

    def _done(self, latency: float, *, force: bool = False) -> None:
        self.latencies.append(latency)
        now = time.perf_counter()
        self.t1 = now
        progress = now - self.t0 if self.seconds else len(self.latencies)
        self.bar.update(progress, len(self.latencies), force=force)

    def run_sync(self, request: InferRequest) -> None:
        self.t0 = time.perf_counter()
        while self._claim():
            start = time.perf_counter()
            request.infer()
            self._done(time.perf_counter() - start)
        self._done_final()

    async def run_async(self, requests: list[InferRequest]) -> None:
        async def worker(request: InferRequest) -> None:
            while self._claim():
                start = time.perf_counter()
                await request.infer_async()
                self._done(time.perf_counter() - start)

        self.t0 = time.perf_counter()
        async with anyio.create_task_group() as group:
            for request in requests:
                group.start_soon(worker, request)
        self._done_final()

    def _done_final(self) -> None:
        done = self.t1 - self.t0 if self.seconds else len(self.latencies)
        self.bar.update(done, len(self.latencies), force=True)


def _report(config: BenchmarkConfig, *, model_inputs: dict[str, np.ndarray],
            compiled: CompiledModel, compile_ms: float, first_ms: float, runner: _Runner,
            nireq: int, perf: list[dict[str, Any]]) -> BenchmarkReport:
    lat = np.asarray(runner.latencies) * 1e3
    duration = max(runner.t1 - runner.t0, 1e-9)
    shapes = {name: list(array.shape) for name, array in model_inputs.items()}
    first = next(iter(model_inputs.values()))
    batch = int(first.shape[0]) if first.ndim else 1
    stats = {"median": float(np.median(lat)), "p90": float(np.percentile(lat, 90)),
             "average": float(lat.mean()), "min": float(lat.min()), "max": float(lat.max())}
    return BenchmarkReport(
        model=config.model, device=config.device, api=config.api, hint=str(config.hint),
        nireq=nireq, streams=_streams(compiled), input_shapes=shapes, batch=batch,
        compile_ms=compile_ms, first_inference_ms=first_ms, iterations=len(lat),
        duration_s=duration, latency_ms=stats, throughput_fps=batch * len(lat) / duration,
        peak_memory_mib=_peak_memory_mib(),
        loop=config.loop if config.api == "async" else None, perf_counts=perf,
    )


def _streams(compiled: CompiledModel) -> int | None:
    streams = getattr(compiled, "streams", None)  # resolved count, where the plugin has one
    if isinstance(streams, int):
        return streams
    try:
        return int(compiled.get_property(P.NUM_STREAMS)) or None
    except Exception:
        return None


def _peak_memory_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes vs KiB


def format_report(report: BenchmarkReport) -> str:
    """The human-readable report, in benchmark_app's order."""
    lat = report.latency_ms
    shapes = ", ".join(f"{k}{v}" for k, v in report.input_shapes.items())
    lines = [
        f"Model:                {report.model}",
        f"Device:               {report.device} ({report.api} API"
        + (f", {report.loop}" if report.loop else "") + f", hint {report.hint})",
        f"Streams / requests:   {report.streams or '?'} / {report.nireq}",
        f"Input shapes:         {shapes}",
        f"Compile time:         {report.compile_ms:.2f} ms",
        f"First inference:      {report.first_inference_ms:.2f} ms",
        f"Count:                {report.iterations} iterations",
        f"Duration:             {report.duration_s * 1e3:.2f} ms",
        "Latency:",
        f"   Median:            {lat['median']:.2f} ms",
        f"   P90:               {lat['p90']:.2f} ms",
        f"   Average:           {lat['average']:.2f} ms",
        f"   Min:               {lat['min']:.2f} ms",
        f"   Max:               {lat['max']:.2f} ms",
        f"Throughput:           {report.throughput_fps:.2f} FPS (batch {report.batch})",
        f"Peak memory (RSS):    {report.peak_memory_mib:.1f} MiB",
    ]
    return "\n".join(lines)


def format_perf_counts(report: BenchmarkReport, limit: int = 30) -> str:
    """Per-node times of the last inference, slowest first, then the stage times."""
    if not report.perf_counts:
        return f"Per-node profiling: {report.device} reported no profiling info"
    nodes = [e for e in report.perf_counts if e.get("node_type") != "Stage"]
    stages = [e for e in report.perf_counts if e.get("node_type") == "Stage"]
    lines = [] if nodes else [f"Per-node profiling: {report.device} reports stage times only"]
    if nodes:
        total = sum(float(e.get("real_time", 0.0)) for e in nodes) or 1e-12
        lines.append(f"{'node':<48} {'type':<20} {'exec':<16} {'real ms':>9} {'%':>6}")
        for e in sorted(nodes, key=lambda e: -float(e.get("real_time", 0.0)))[:limit]:
            real = float(e.get("real_time", 0.0))
            lines.append(f"{str(e.get('node_name', '?'))[:48]:<48} "
                         f"{str(e.get('node_type', '?'))[:20]:<20} "
                         f"{str(e.get('exec_type', ''))[:16]:<16} {real * 1e3:9.3f} "
                         f"{100 * real / total:5.1f}%")
        if len(nodes) > limit:
            lines.append(f"... {len(nodes) - limit} more nodes")
        lines.append(f"Total node time: {total * 1e3:.3f} ms over {len(nodes)} nodes")
    for e in stages:
        lines.append(f"stage {e.get('node_name')!s:<12} on {e.get('exec_type')!s:<24} "
                     f"{float(e.get('real_time', 0.0)) * 1e3:9.3f} ms")
    return "\n".join(lines)
