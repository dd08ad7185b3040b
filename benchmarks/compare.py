"""aioinfer (NUMPY) against onnxruntime (and OpenVINO when installed), same machine, same run.

aioinfer runs twice where numba is installed: with its compiled tier (``aioinfer``, the
default) and without it (``aioinfer-numpy``, ENABLE_JIT=False). The engines also run as
aioinfer devices (``aioinfer:ORT``, ``aioinfer:OPENVINO`` when installed) and behind the CPU
proxy (``aioinfer:CPU``), next to their own APIs; OpenVINO runs f32 on both sides.

Every (model, engine, mode) pair lives in a worker process of its own, so each engine's peak
RSS is its own; the parent interleaves the workers round by round (a burst of inferences on
each in turn), so load from elsewhere on the machine hits every engine alike; each burst starts
after a short idle pause, so that the spin-waiting thread pools of the engine before it
(onnxruntime's, OpenBLAS's) have gone back to sleep. Reported per
model: latency (LATENCY hint / default session, batch 1, median), throughput (THROUGHPUT hint
with OPTIMAL_NUMBER_OF_INFER_REQUESTS concurrent ``infer_async`` calls; onnxruntime: two
threads, one intra-op thread each, on one session), compile time, peak RSS and GFLOP/s, and
the ratios of aioinfer to each peer; a Markdown table and an SVG plot of the ratios.

    python benchmarks/compare.py --rounds 5 --out benchmarks/results.md --svg benchmarks/ratios.svg
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import multiprocessing as mp
import pathlib
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout

LIGHT = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
LIGHT_MODELS = ["resnet50", "densenet121", "inception_v1", "squeezenet", "shufflenet"]
SETTLE_S = 0.2  # idle time before each burst: the previous engine's spinning threads stop
#: built-in models: name -> builder arguments ("model": the builder's name when it differs)
BUILT: dict[str, dict[str, Any]] = {
    "bert": dict(hidden=256, layers=4, heads=4, seq=128, max_positions=128),
    "gpt2": dict(hidden=256, layers=4, heads=4, seq=32, past=32),
    "gpt2-step": dict(model="gpt2", hidden=256, layers=4, heads=4, seq=1, past=127,
                      max_positions=128),  # a decoder step: one new token, 127 cached
    "vit": dict(image_size=224, patch=16, hidden=192, layers=4, heads=3),
    "mobilenet_v2": dict(image_size=224),
    "mlp": dict(batch=64, sizes=(1024, 4096, 4096, 1000)),
}


# -- models -----------------------------------------------------------------------------------
def randomized_light(name: str, seed: int = 0) -> onnx.ModelProto:
    """A light model with its ConstantOfShape weights replaced by seeded random initializers.

    Vectors (BatchNorm parameters, biases) are uniform in [0.5, 1.5]; weights are He-normal.
    """
    model = onnx.load(str(LIGHT / f"light_{name}.onnx"))
    graph, rng = model.graph, np.random.default_rng(seed)
    inits = {t.name: t for t in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
            kept.append(node)
            continue
        shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
        if len(shape) < 2:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.standard_normal(shape) * np.sqrt(2.0 / np.prod(shape[1:]))
        graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
    del graph.node[:]
    graph.node.extend(kept)
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    live = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)
    names = {t.name for t in live}
    inputs = [i for i in graph.input if i.name not in names and i.name in used]
    del graph.input[:]
    graph.input.extend(inputs)
    model.ir_version = max(model.ir_version, 4)
    return model


def build_models(names: list[str], folder: pathlib.Path) -> dict[str, pathlib.Path]:
    from aioinfer import models

    paths = {}
    for name in names:
        if name in LIGHT_MODELS:
            proto = randomized_light(name)
        else:
            kw = dict(BUILT[name])
            proto = models.get(kw.pop("model", name), **kw)
        path = folder / f"{name}.onnx"
        onnx.save(proto, str(path))
        paths[name] = path
    return paths


def gflops(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> float:
    """GFLOP of one inference: 2 x the multiply-adds of Conv, Gemm and MatMul, counted from
    the operand shapes seen in one run of the unoptimised NUMPY plan (dynamic shapes too)."""
    from aioinfer.plugins.numpy.compiler import compile_graph

    plan = compile_graph(model.graph, {o.domain: o.version for o in model.opset_import},
                         optimize=False)
    total = [0.0]

    def counted(step: Any) -> Any:
        def run(*args: Any) -> Any:
            y = step.fn(*args)
            out = np.asarray(y[0] if isinstance(y, tuple) else y)
            if step.op_type == "Conv":
                total[0] += 2.0 * out.size * np.prod(args[1].shape[1:])
            else:
                a = args[0]
                transposed = getattr(step.fn, "keywords", {}).get("transA", 0)
                total[0] += 2.0 * out.size * (a.shape[-2] if transposed else a.shape[-1])
            return y
        return dataclasses.replace(step, fn=run)

    plan.steps = [counted(s) if s.op_type in ("Conv", "Gemm", "MatMul") else s
                  for s in plan.steps]
    plan.run([feeds[name] for name in plan.input_names])
    return total[0] / 1e9


# -- engines (run inside the workers) ------------------------------------------------------------
def _aioinfer(path: str, mode: str, jit: bool | None = None, device: str = "NUMPY"
              ) -> tuple[Callable[[], Any], Callable[[float], float]]:
    import aioinfer
    from aioinfer import models

    core = aioinfer.Core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": mode}
    if jit is not None:
        config["ENABLE_JIT"] = jit
    compiled = core.compile_model(path, device, config)
    feeds = models.example_inputs(onnx.load(path))
    request = compiled.create_infer_request()

    def once() -> Any:
        return request.infer(feeds)

    def throughput(seconds: float) -> float:
        n = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        return asyncio.run(_async_throughput(compiled, feeds, n, seconds))

    return once, throughput


async def _async_throughput(compiled: Any, feeds: Any, n: int, seconds: float) -> float:
    done = 0
    end = time.perf_counter() + seconds

    async def loop() -> None:
        nonlocal done
        while time.perf_counter() < end:
            await compiled.infer_async(feeds)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(n)))
    return done / (time.perf_counter() - start)


def _onnxruntime(path: str, mode: str) -> tuple[Callable[[], Any], Callable[[float], float]]:
    import onnxruntime as ort

    from aioinfer import models
    from aioinfer.plugins.numpy.threads import cores

    options = ort.SessionOptions()
    streams = 2 if mode == "THROUGHPUT" else 1
    options.intra_op_num_threads = max(1, cores() // streams)
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feeds = models.example_inputs(onnx.load(path))

    def once() -> Any:
        return session.run(None, feeds)

    return once, lambda seconds: _threaded_throughput(once, streams, seconds)


def _openvino(path: str, mode: str) -> tuple[Callable[[], Any], Callable[[float], float]]:
    import openvino as ov

    from aioinfer import models

    # f32, as aioinfer's devices run (OpenVINO's own default is bf16 where the CPU has it)
    compiled = ov.Core().compile_model(path, "CPU", {"PERFORMANCE_HINT": mode,
                                                     "INFERENCE_PRECISION_HINT": ov.Type.f32})
    feeds = models.example_inputs(onnx.load(path))
    request = compiled.create_infer_request()

    def throughput(seconds: float) -> float:
        n = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        requests = [compiled.create_infer_request() for _ in range(n)]
        return _threaded_throughput(lambda: None, 0, seconds, requests, feeds)

    return lambda: request.infer(feeds), throughput


def _threaded_throughput(once: Callable[[], Any], threads: int, seconds: float,
                         requests: list | None = None, feeds: Any = None) -> float:
    done = [0]
    lock = threading.Lock()
    end = time.perf_counter() + seconds
    calls = ([once] * threads) if requests is None else [lambda r=r: r.infer(feeds)
                                                         for r in requests]

    def loop(call: Callable[[], Any]) -> None:
        while time.perf_counter() < end:
            call()
            with lock:
                done[0] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(c,)) for c in calls]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return done[0] / (time.perf_counter() - start)


def _aioinfer_numpy(path: str, mode: str) -> tuple[Callable[[], Any], Callable[[float], float]]:
    """aioinfer without its compiled (numba) tier: NumPy's kernels only."""
    return _aioinfer(path, mode, jit=False)


Engine = Callable[[str, str], tuple[Callable[[], Any], Callable[[float], float]]]
ENGINES: dict[str, Engine] = {
    "aioinfer": _aioinfer, "aioinfer-numpy": _aioinfer_numpy,
    "onnxruntime": _onnxruntime, "openvino": _openvino,
    # the engines as aioinfer devices, and the CPU proxy over them (await infer_async)
    "aioinfer:OPENVINO": functools.partial(_aioinfer, device="OPENVINO"),
    "aioinfer:ORT": functools.partial(_aioinfer, device="ORT"),
    "aioinfer:CPU": functools.partial(_aioinfer, device="CPU")}
OURS = ("aioinfer", "aioinfer-numpy", "aioinfer:OPENVINO", "aioinfer:ORT",
        "aioinfer:CPU")  # rows that get ratio columns


def _worker(conn: Any, engine: str, path: str, mode: str) -> None:
    """Compile once, then answer ("latency", n) / ("throughput", s) / ("rss",) requests."""
    try:
        start = time.perf_counter()
        once, throughput = ENGINES[engine](path, mode)
        compile_s = time.perf_counter() - start
        for _ in range(2):
            once()
        conn.send(("ready", compile_s))
        while True:
            command = conn.recv()
            if command[0] == "latency":
                times = []
                for _ in range(command[1]):
                    t = time.perf_counter()
                    once()
                    times.append(time.perf_counter() - t)
                conn.send(("ok", times))
            elif command[0] == "throughput":
                conn.send(("ok", throughput(command[1])))
            elif command[0] == "rss":
                conn.send(("ok", peak_rss_mb()))
            else:
                conn.send(("ok", None))
                return
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which skips the engine
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss would include the parent's)."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, engine: str, path: pathlib.Path, mode: str) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, engine, str(path), mode),
                                daemon=True)
        self.proc.start()
        status, value = self.conn.recv()
        if status != "ready":
            self.close()
            raise RuntimeError(value)
        self.compile_s = value

    def ask(self, *command: Any) -> Any:
        self.conn.send(command)
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(("stop",))
            except OSError:
                pass
            self.proc.join(10)


# -- the run ------------------------------------------------------------------------------------
def available_engines() -> list[str]:
    """aioinfer (with the compiled tier when numba is installed, and then also without it:
    ``aioinfer-numpy``), onnxruntime, and OpenVINO when installed."""
    from aioinfer.plugins.numpy.kernels import jit

    engines = ["aioinfer", "aioinfer-numpy"] if jit.default_enabled() else ["aioinfer"]
    engines += ["onnxruntime", "aioinfer:ORT"]
    try:
        import openvino  # noqa: F401

        engines += ["openvino", "aioinfer:OPENVINO"]
    except ImportError:
        pass
    return [*engines, "aioinfer:CPU"]


def bench_model(name: str, path: pathlib.Path, engines: list[str], rounds: int, burst: int,
                seconds: float) -> dict[str, dict[str, float]]:
    """Latency and throughput of each engine on one model, interleaved round by round."""
    results: dict[str, dict[str, float]] = {}
    workers = {}
    for engine in engines:
        try:
            workers[engine] = Worker(engine, path, "LATENCY")
        except RuntimeError as exc:
            print(f"  {name}: {engine} skipped ({exc})", file=sys.stderr)
    times: dict[str, list[float]] = {e: [] for e in workers}
    for _ in range(rounds):
        for engine, worker in workers.items():
            time.sleep(SETTLE_S)
            times[engine] += worker.ask("latency", burst)
    for engine, worker in workers.items():
        results[engine] = {"latency_ms": statistics.median(times[engine]) * 1e3,
                           "compile_s": worker.compile_s, "rss_mb": worker.ask("rss")}
        worker.close()
    tput = {e: Worker(e, path, "THROUGHPUT") for e in workers}
    rates: dict[str, list[float]] = {e: [] for e in tput}
    for _ in range(max(1, rounds // 2)):
        for engine, worker in tput.items():
            time.sleep(SETTLE_S)
            rates[engine].append(worker.ask("throughput", seconds))
    for engine, worker in tput.items():
        results[engine]["throughput"] = statistics.median(rates[engine])
        results[engine]["rss_mb"] = max(results[engine]["rss_mb"], worker.ask("rss"))
        worker.close()
    return results


def table(all_results: dict[str, dict[str, dict[str, float]]], flops: dict[str, float],
          peers: list[str]) -> str:
    head = ["model", "engine", "latency ms", "GFLOP/s", "inf/s (tput)", "compile s",
            "peak RSS MB"]
    head += [f"lat/{p}" for p in peers] + [f"tput/{p}" for p in peers] + [f"RSS/{p}"
                                                                            for p in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, res in all_results.items():
        for engine, r in res.items():
            row = [model, engine, f"{r['latency_ms']:.2f}",
                   f"{flops[model] / (r['latency_ms'] / 1e3):.1f}", f"{r['throughput']:.1f}",
                   f"{r['compile_s']:.2f}", f"{r['rss_mb']:.0f}"]
            for key, fmt in (("latency_ms", "{:.2f}x"), ("throughput", "{:.2f}x"),
                             ("rss_mb", "{:.2f}x")):
                for p in peers:
                    if engine in OURS and p in res:
                        row.append(fmt.format(r[key] / res[p][key]))
                    else:
                        row.append("")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def svg(all_results: dict[str, dict[str, dict[str, float]]], peer: str) -> str:
    """Bars of aioinfer/peer latency and peer/aioinfer throughput ratios (lower is better)."""
    models = [m for m, r in all_results.items() if peer in r and "aioinfer" in r]
    width, bar, height, top = 120, 22, 260, 30
    scale = height / max([2.0] + [all_results[m]["aioinfer"]["latency_ms"]
                                  / all_results[m][peer]["latency_ms"] for m in models]
                         + [all_results[m][peer]["throughput"]
                            / all_results[m]["aioinfer"]["throughput"] for m in models])
    w = 60 + len(models) * width
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height + 90}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="10" y="16">aioinfer / {peer}: latency ratio (blue), inverse throughput '
           'ratio (orange); 1.0 = parity, lower is better</text>']
    base = top + height
    y1 = base - scale
    out.append(f'<line x1="40" x2="{w}" y1="{y1:.1f}" y2="{y1:.1f}" stroke="black" '
               'stroke-dasharray="4"/>')
    for k, model in enumerate(models):
        r = all_results[model]
        lat = r["aioinfer"]["latency_ms"] / r[peer]["latency_ms"]
        tput = r[peer]["throughput"] / r["aioinfer"]["throughput"]
        x = 50 + k * width
        for j, (v, color) in enumerate(((lat, "#4c72b0"), (tput, "#dd8452"))):
            h = v * scale
            out.append(f'<rect x="{x + j * (bar + 4)}" y="{base - h:.1f}" width="{bar}" '
                       f'height="{h:.1f}" fill="{color}"/>')
            out.append(f'<text x="{x + j * (bar + 4)}" y="{base - h - 3:.1f}">{v:.2f}</text>')
        out.append(f'<text x="{x}" y="{base + 16}">{model}</text>')
    out.append(f'<line x1="40" x2="{w}" y1="{base}" y2="{base}" stroke="black"/>')
    out.append("</svg>")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[*LIGHT_MODELS, *BUILT])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--burst", type=int, default=5, help="inferences per engine per round")
    parser.add_argument("--seconds", type=float, default=2.0, help="per throughput round")
    parser.add_argument("--out", type=pathlib.Path, help="write the Markdown table here")
    parser.add_argument("--svg", type=pathlib.Path, help="write the ratio plot here")
    args = parser.parse_args(argv)
    engines = available_engines()
    peers = [e for e in engines if e not in OURS]
    results, flops = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_models(args.models, pathlib.Path(tmp))
        for name, path in paths.items():
            from aioinfer import models

            proto = onnx.load(str(path))
            flops[name] = gflops(proto, models.example_inputs(proto))
            print(f"{name}: {flops[name]:.2f} GFLOP", file=sys.stderr)
            results[name] = bench_model(name, path, engines, args.rounds, args.burst,
                                        args.seconds)
    text = table(results, flops, peers)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.svg and peers:
        args.svg.write_text(svg(results, peers[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
