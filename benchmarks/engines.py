"""The OPENVINO and ORT devices against their engines' own APIs, same machine, same run.

Per model (``resnet50``, ``squeezenet`` and ``bert`` as ``compare.py`` builds them), in one
process, interleaved round by round (each measurement after a short idle pause, so that the
previous engine's spinning threads have gone back to sleep), medians over rounds:

- **OPENVINO throughput**: ``await infer_async`` through the OPENVINO device (THROUGHPUT hint,
  f32) with OPTIMAL_NUMBER_OF_INFER_REQUESTS tasks, each on its own request, against
  OpenVINO's own ``AsyncInferQueue`` (THROUGHPUT, f32) bridged to asyncio the usual way (a
  future per job, ``call_soon_threadsafe`` from the callback; the queue has twice as many
  jobs as tasks in flight, since its ``start_async`` blocks the loop while none is idle), the
  same queue fed from a plain thread (no event loop at all: the engine's ceiling), and
  OpenVINO's sync ``infer`` from as many threads. Target: >= 0.95x the queue.
- **OPENVINO latency**: one request, LATENCY hint, f32: ``await infer_async`` and ``infer()``
  against OpenVINO's sync ``infer``. Target: <= 1.05x.
- **ORT throughput**: ``await infer_async`` through the ORT device (THROUGHPUT: two streams;
  by default stream threads calling ``run``, and with ``ORT_RUN_ASYNC`` onnxruntime's
  ``run_async``) with OPTIMAL_NUMBER_OF_INFER_REQUESTS tasks (two per stream: one running, one
  queued), against onnxruntime's ``run_async`` bridged to asyncio (as many runs in flight, on a
  session whose pool has two threads, the fewest that run two at once) and against two threads
  calling ``run`` on one session of one intra-op thread each (``compare.py``'s peer: two
  concurrent runs, never idle).
- **ORT latency**: one request, LATENCY: ``await infer_async`` and ``infer()`` (both ways)
  against ``run`` on a session with one intra-op thread per core, once with onnxruntime's
  default options and once with the very options of the plugin's session
  (``get_session_options()``: threads, optimization level, session config entries such as
  ``session.force_spinning_stop``), so that a setting of the plugin's is not counted as the
  runtime's gain; "the fastest peer of each round" is the better of the two.

- **CPU** (``--engines cpu``): ``await infer_async`` on ``CPU`` (the proxy, OPENVINO primary)
  against NUMPY (through aioinfer), OpenVINO-f32 and onnxruntime each alone in its best way
  (above), throughput and latency. Target: within 5% of the fastest.

Event-loop lag while OPENVINO streams run is ``loop_lag.py --device OPENVINO``.

The modes run in turn, rotated each round and reversed every other round; ratios are
aioinfer / native per round (measured seconds apart), and their median and range (the noise)
are reported, with the cores other processes used meanwhile (Linux: the host's busy time in
``/proc/stat`` less this process's own, per measurement). On a 2-core host that others keep
busy, every sleep and wake-up costs a wait for a core, and ``await infer_async`` has two per
request (to a stream thread and back to the loop) where a ``run`` called back to back has none:
read a ratio with that figure beside it.

    python benchmarks/engines.py [--models resnet50 squeezenet bert] [--rounds 5]
                                 [--seconds 2] [--engines openvino ort cpu]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import onnx

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # run from a checkout

from compare import build_models  # noqa: E402

import aioinfer  # noqa: E402
from aioinfer import models  # noqa: E402

SETTLE_S = 0.3
Measure = Callable[[float], float]  # seconds -> inferences/s, or -> median latency (ms)


# -- shared drivers ---------------------------------------------------------------------------
def _async_rate(tasks: int, make: Callable[[], Callable[[], Awaitable[Any]]],
                seconds: float) -> float:
    async def main() -> float:
        count = 0
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            infer = make()
            while time.perf_counter() < end:
                await infer()
                count += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        return count / (time.perf_counter() - start)

    return asyncio.run(main())


def _thread_rate(calls: list[Callable[[], Any]], seconds: float) -> float:
    counts = [0] * len(calls)
    end = time.perf_counter() + seconds

    def loop(k: int) -> None:
        while time.perf_counter() < end:
            calls[k]()
            counts[k] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(k,)) for k in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def _latency(call: Callable[[], Any], seconds: float) -> float:
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _async_latency(request: Any, feeds: Any, seconds: float) -> float:
    async def main() -> float:
        times: list[float] = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < 5:
            start = time.perf_counter()
            await request.infer_async(feeds)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    return asyncio.run(main())


def _bridge(loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
    loop.call_soon_threadsafe(_settle, future)


def _settle(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


# -- OPENVINO ---------------------------------------------------------------------------------
def openvino_modes(path: str, feeds: dict[str, Any]) -> dict[str, dict[str, Measure]]:
    """{"throughput": {mode: measure}, "latency": {...}}; the first mode of each is ours."""
    import openvino as ov

    core = aioinfer.Core()
    tput = core.compile_model(path, "OPENVINO", {"PERFORMANCE_HINT": "THROUGHPUT"})
    lat = core.compile_model(path, "OPENVINO", {"PERFORMANCE_HINT": "LATENCY"})
    n = int(tput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    native = ov.Core()
    f32 = {"INFERENCE_PRECISION_HINT": ov.Type.f32}
    ov_tput = native.compile_model(path, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", **f32})
    ov_lat = native.compile_model(path, "CPU", {"PERFORMANCE_HINT": "LATENCY", **f32})
    ov_feeds = list(feeds.values())
    queue = ov.AsyncInferQueue(ov_tput, 2 * n)
    pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = {}

    def completed(_request: Any, key: int) -> None:
        _bridge(*pending.pop(key))

    queue.set_callback(completed)
    keys = iter(range(1 << 62))

    def queue_job() -> Callable[[], Awaitable[Any]]:
        async def infer() -> None:
            loop = asyncio.get_running_loop()
            key, future = next(keys), loop.create_future()
            pending[key] = (loop, future)
            queue.start_async(ov_feeds, key)
            await future

        return infer

    ours_requests = [tput.create_infer_request() for _ in range(n)]
    ov_requests = [ov_tput.create_infer_request() for _ in range(n)]
    lat_request, ov_lat_request = lat.create_infer_request(), ov_lat.create_infer_request()
    pool = iter(ours_requests * 1000)

    def ours_job() -> Callable[[], Awaitable[Any]]:
        request = next(pool)
        return lambda: request.infer_async(feeds)

    return {
        "throughput": {
            f"aioinfer OPENVINO infer_async x{n}": lambda s: _async_rate(n, ours_job, s),
            f"openvino AsyncInferQueue x{n} (asyncio)": lambda s: _async_rate(n, queue_job, s),
            f"openvino AsyncInferQueue x{n} (no loop)": lambda s: _queue_rate(ov_tput, n,
                                                                              ov_feeds, s),
            f"openvino infer, {n} threads": lambda s: _thread_rate(
                [functools.partial(r.infer, ov_feeds) for r in ov_requests], s),
        },
        "latency": {
            "aioinfer OPENVINO await infer_async": lambda s: _async_latency(lat_request, feeds,
                                                                            s),
            "aioinfer OPENVINO infer()": lambda s: _latency(lambda: lat_request.infer(feeds), s),
            "openvino infer (sync)": lambda s: _latency(lambda: ov_lat_request.infer(ov_feeds),
                                                        s),
        },
    }


# -- ORT --------------------------------------------------------------------------------------
def ort_modes(path: str, feeds: dict[str, Any]) -> dict[str, dict[str, Measure]]:
    import onnxruntime as ort

    core = aioinfer.Core()

    def ours(hint: str, run_async: bool, streams: int = 0) -> Any:
        config = {"PERFORMANCE_HINT": hint, "ORT_RUN_ASYNC": run_async, "NUM_STREAMS": streams}
        return core.compile_model(path, "ORT", config)

    tput, tput_async = ours("THROUGHPUT", False, 2), ours("THROUGHPUT", True, 2)
    lat, lat_async = ours("LATENCY", False), ours("LATENCY", True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2

    def session(threads: int) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    pooled, single, full = session(3), session(1), session(cores)
    # the plugin's LATENCY session's own options, on a session of onnxruntime's
    same = ort.InferenceSession(path, lat.session.get_session_options(),
                                providers=["CPUExecutionProvider"])
    n = int(tput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    n_async = int(tput_async.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    def run_async_job() -> Callable[[], Awaitable[Any]]:
        async def infer() -> None:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            pooled.run_async(None, feeds, lambda _o, _u, _e: _bridge(loop, future), None)
            await future

        return infer

    def jobs(compiled: Any, tasks: int) -> Callable[[], Callable[[], Awaitable[Any]]]:
        requests = iter([compiled.create_infer_request() for _ in range(tasks)] * 1000)

        def job() -> Callable[[], Awaitable[Any]]:
            request = next(requests)
            return lambda: request.infer_async(feeds)

        return job

    ours_job, ours_async_job = jobs(tput, n), jobs(tput_async, n_async)
    lat_request, lat_async_request = lat.create_infer_request(), lat_async.create_infer_request()
    return {
        "throughput": {
            f"aioinfer ORT infer_async x{n}": lambda s: _async_rate(n, ours_job, s),
            f"aioinfer ORT (ORT_RUN_ASYNC) infer_async x{n_async}": lambda s: _async_rate(
                n_async, ours_async_job, s),
            f"onnxruntime run_async x{n} (asyncio)": lambda s: _async_rate(n, run_async_job, s),
            "onnxruntime run, 2 threads": lambda s: _thread_rate(
                [lambda: single.run(None, feeds)] * 2, s),
        },
        "latency": {
            "aioinfer ORT await infer_async": lambda s: _async_latency(lat_request, feeds, s),
            "aioinfer ORT infer()": lambda s: _latency(lambda: lat_request.infer(feeds), s),
            "aioinfer ORT (ORT_RUN_ASYNC) await infer_async": lambda s: _async_latency(
                lat_async_request, feeds, s),
            f"onnxruntime run ({cores} threads)": lambda s: _latency(
                lambda: full.run(None, feeds), s),
            "onnxruntime run (the plugin's session options)": lambda s: _latency(
                lambda: same.run(None, feeds), s),
        },
    }


# -- CPU --------------------------------------------------------------------------------------
def cpu_modes(path: str, feeds: dict[str, Any]) -> dict[str, dict[str, Measure]]:
    """``CPU`` (the proxy: OPENVINO first) against the fastest of NUMPY, ORT and OpenVINO-f32
    each measured alone, each in its best way: NUMPY through aioinfer (it has no other API),
    the engines through their own APIs (OpenVINO's AsyncInferQueue and sync infer, f32;
    onnxruntime's run from two threads and on one session of all cores)."""
    import onnxruntime as ort
    import openvino as ov

    core = aioinfer.Core()

    def ours(device: str, hint: str) -> tuple[Any, int]:
        compiled = core.compile_model(path, device, {"PERFORMANCE_HINT": hint})
        return compiled, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))

    (cpu, n_cpu), (cpu_lat, _) = ours("CPU", "THROUGHPUT"), ours("CPU", "LATENCY")
    (numpy, n_numpy), (numpy_lat, _) = ours("NUMPY", "THROUGHPUT"), ours("NUMPY", "LATENCY")
    native = ov.Core()
    f32 = {"INFERENCE_PRECISION_HINT": ov.Type.f32}
    ov_tput = native.compile_model(path, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", **f32})
    ov_lat = native.compile_model(path, "CPU", {"PERFORMANCE_HINT": "LATENCY", **f32})
    n_ov = int(ov_tput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    ov_feeds = list(feeds.values())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2

    def session(threads: int) -> Any:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    single, full = session(1), session(cores)

    def jobs(compiled: Any, n: int) -> Callable[[], Callable[[], Awaitable[Any]]]:
        requests = iter([compiled.create_infer_request() for _ in range(n)] * 1000)

        def job() -> Callable[[], Awaitable[Any]]:
            request = next(requests)
            return lambda: request.infer_async(feeds)

        return job

    cpu_job, numpy_job = jobs(cpu, n_cpu), jobs(numpy, n_numpy)
    cpu_request, numpy_request = cpu_lat.create_infer_request(), numpy_lat.create_infer_request()
    ov_request = ov_lat.create_infer_request()
    return {
        "throughput": {
            f"aioinfer CPU infer_async x{n_cpu}": lambda s: _async_rate(n_cpu, cpu_job, s),
            f"NUMPY (aioinfer) infer_async x{n_numpy}": lambda s: _async_rate(
                n_numpy, numpy_job, s),
            f"openvino f32 AsyncInferQueue x{n_ov}": lambda s: _queue_rate(ov_tput, n_ov,
                                                                           ov_feeds, s),
            "onnxruntime run, 2 threads": lambda s: _thread_rate(
                [lambda: single.run(None, feeds)] * 2, s),
        },
        "latency": {
            "aioinfer CPU await infer_async": lambda s: _async_latency(cpu_request, feeds, s),
            "NUMPY (aioinfer) await infer_async": lambda s: _async_latency(numpy_request,
                                                                           feeds, s),
            "openvino f32 infer (sync)": lambda s: _latency(lambda: ov_request.infer(ov_feeds),
                                                            s),
            f"onnxruntime run ({cores} threads)": lambda s: _latency(
                lambda: full.run(None, feeds), s),
        },
    }


def _queue_rate(compiled: Any, jobs: int, feeds: list[Any], seconds: float) -> float:
    """OpenVINO's AsyncInferQueue at its best, without asyncio: ``jobs`` requests kept busy."""
    import openvino as ov

    queue = ov.AsyncInferQueue(compiled, jobs)
    count = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        queue.start_async(feeds)  # blocks (GIL released) while every request is busy
        count += 1
    queue.wait_all()
    return count / (time.perf_counter() - start)


ENGINES = {"openvino": openvino_modes, "ort": ort_modes, "cpu": cpu_modes}


# -- the run ------------------------------------------------------------------------------------
def _host_busy_s() -> float | None:
    """Seconds of CPU the whole host has been busy (all cores), or ``None`` off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / ticks


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


FOREIGN = "cores used by other processes"


def bench(modes: dict[str, Measure], rounds: int, seconds: float) -> dict[str, list[float]]:
    """Each mode's value per round, and under :data:`FOREIGN` the cores other processes used
    during each measurement (empty off Linux)."""
    for measure in modes.values():  # warm up
        measure(min(seconds, 0.5))
    values: dict[str, list[float]] = {name: [] for name in modes}
    foreign: list[float] = []
    items = list(modes.items())
    for k in range(rounds):
        # rotated and every other round reversed: no mode always follows the same neighbour
        order = items[k % len(items):] + items[:k % len(items)]
        for name, measure in (order if k % 2 == 0 else order[::-1]):
            time.sleep(SETTLE_S)
            host, own, start = _host_busy_s(), _own_cpu_s(), time.perf_counter()
            values[name].append(measure(seconds))
            after = _host_busy_s()
            if host is not None and after is not None:
                wall = time.perf_counter() - start
                foreign.append(max(0.0, (after - host) - (_own_cpu_s() - own)) / wall)
    values[FOREIGN] = foreign
    return values


def report(title: str, values: dict[str, list[float]], unit: str, higher_better: bool,
           target: float) -> list[str]:
    """Each mode's median, and each of ours (named ``aioinfer ...``) against each peer and
    against the best peer of the same round, as paired ratios (median and range)."""
    values = dict(values)
    foreign = values.pop(FOREIGN, [])
    names = list(values)
    ours = [n for n in names if n.startswith("aioinfer")]
    natives = [n for n in names if not n.startswith("aioinfer")]
    best = max if higher_better else min
    rounds = len(values[names[0]])
    values = {**values, "the fastest peer of each round": [
        best(values[p][k] for p in natives) for k in range(rounds)]}
    if len(natives) > 1:
        natives.append("the fastest peer of each round")
    lines = [f"  {title} ({unit}, median of {rounds} rounds)"]
    if foreign:
        lines.append(f"    {FOREIGN} while measuring: median {statistics.median(foreign):.2f} "
                     f"(measurements {min(foreign):.2f}..{max(foreign):.2f})")
    for name in names:
        lines.append(f"    {name:44} {statistics.median(values[name]):9.2f}  (rounds "
                     f"{min(values[name]):.2f}..{max(values[name]):.2f})")
    for mine in ours:
        for peer in natives:
            ratios = [a / b for a, b in zip(values[mine], values[peer], strict=True)]
            median = statistics.median(ratios)
            met = median >= target if higher_better else median <= target
            sign = ">=" if higher_better else "<="
            lines.append(f"    {mine} / {peer}: {median:.3f}x (rounds {min(ratios):.3f}.."
                         f"{max(ratios):.3f}; target {sign} {target}: "
                         f"{'met' if met else 'NOT met'})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["resnet50", "squeezenet", "bert"])
    parser.add_argument("--engines", nargs="*", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="per mode and round")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start (a shared host: "
          "the rounds' range is the noise)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_models(args.models, pathlib.Path(tmp))
        for name, path in paths.items():
            feeds = models.example_inputs(onnx.load(str(path)))
            for engine in args.engines:
                try:
                    modes = ENGINES[engine](str(path), feeds)
                except ImportError as exc:
                    print(f"{name}: {engine} skipped ({exc})")
                    continue
                print(f"{name} on {engine}:", flush=True)
                tput = bench(modes["throughput"], args.rounds, args.seconds)
                lat = bench(modes["latency"], args.rounds, args.seconds)
                lines = report("throughput", tput, "inf/s", True, 0.95)
                lines[1:1] = [f"  load {os.getloadavg()[0]:.1f} after throughput"]
                lines += report("latency", lat, "ms", False, 1.05)
                print("\n".join(lines), f"\n  load {os.getloadavg()[0]:.1f}", flush=True)
                del modes
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
