"""HETERO pipelining: with requests in flight, subgraphs on different devices overlap.

A chain of ``--layers`` MatMul+Relu blocks is split in two by AFFINITY: the first half on
NUMPY, the second on TEMPLATE. Each round measures, interleaved:

- stage A and stage B alone: the median latency of each half compiled on its own device;
- HETERO with ``--in-flight`` tasks awaiting ``compiled.infer_async`` back to back.

A request that ran its subgraphs strictly one after the other would reach at most
1 / (t_A + t_B) inferences/s; a pipeline reaches up to 1 / max(t_A, t_B), because request i's
subgraph on TEMPLATE runs while request i+1's runs on NUMPY. Reported: the medians over the
rounds, the pipelined throughput as a fraction of 1 / max(t_A, t_B), and the host's load.

Two stages running at once on one host slow each other (shared caches, memory bandwidth, the
GIL for the Python between kernels), whatever runtime drives them. So each round also runs the
two halves concurrently on two plain threads, each calling its stage back to back with no
aioinfer runtime between them: ``co-run`` is the rate of the slower of those loops, the
ceiling any pipeline on this host can reach. HETERO / co-run is the runtime's own efficiency.

    python benchmarks/hetero_pipeline.py [--rounds 5] [--seconds 2] [--in-flight 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import aioinfer


def chain_model(layers: int, rows: int, width: int, seed: int = 0) -> onnx.ModelProto:
    """x[rows, width] -> (MatMul W_k -> Relu) x layers."""
    rng = np.random.default_rng(seed)
    nodes, inits, value = [], [], "x"
    for k in range(layers):
        w = (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"W{k}"))
        nodes.append(helper.make_node("MatMul", [value, f"W{k}"], [f"m{k}"], name=f"matmul{k}"))
        nodes.append(helper.make_node("Relu", [f"m{k}"], [f"r{k}"], name=f"relu{k}"))
        value = f"r{k}"
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rows, width])],
        [helper.make_tensor_value_info(value, TensorProto.FLOAT, [rows, width])],
        initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def latency(compiled: aioinfer.CompiledModel, x: np.ndarray, seconds: float) -> float:
    """Median seconds of one sync inference."""
    request = compiled.create_infer_request()
    request.infer(x)
    times: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 5:
        start = time.perf_counter()
        request.infer(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def co_run(stage_a: aioinfer.CompiledModel, x: np.ndarray, stage_b: aioinfer.CompiledModel,
           mid: np.ndarray, seconds: float) -> float:
    """Rate of the slower of two plain threads running stage A and stage B at the same time."""
    counts = [0, 0]
    start_barrier = threading.Barrier(2)
    end = 0.0

    def loop(slot: int, compiled: aioinfer.CompiledModel, value: np.ndarray) -> None:
        nonlocal end
        request = compiled.create_infer_request()
        request.infer(value)
        if start_barrier.wait() == 0:
            end = time.perf_counter() + seconds
        start_barrier.wait()
        while time.perf_counter() < end:
            request.infer(value)
            counts[slot] += 1

    threads = [threading.Thread(target=loop, args=(0, stage_a, x)),
               threading.Thread(target=loop, args=(1, stage_b, mid))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return min(counts) / seconds


async def pipelined(compiled: aioinfer.CompiledModel, x: np.ndarray, tasks: int,
                    seconds: float) -> float:
    """Inferences/s with ``tasks`` tasks awaiting infer_async back to back."""
    count = 0
    end = 0.0

    async def worker() -> None:
        nonlocal count
        request = compiled.create_infer_request()
        await request.infer_async(x)  # warm-up outside the timed window
        while time.perf_counter() < end:
            await request.infer_async(x)
            count += 1

    end = time.perf_counter() + seconds
    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(tasks)])
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--numpy-threads", type=int, default=1,
                        help="NUMPY's INFERENCE_NUM_THREADS (0: every core)")
    args = parser.parse_args(argv)

    core = aioinfer.Core()
    model = core.read_model(chain_model(args.layers, args.rows, args.width))
    names = [node.name for node in model.proto.graph.node]
    half = len(names) // 2
    affinity = {n: ("NUMPY" if k < half else "TEMPLATE") for k, n in enumerate(names)}
    # One core per device, as a pipeline wants: NUMPY would otherwise cut its products over
    # both cores (and OpenBLAS's threads) while TEMPLATE's products need one of them.
    hetero = core.compile_model(model, "HETERO:NUMPY,TEMPLATE", {
        "AFFINITY": affinity,
        "DEVICE_PROPERTIES": {"NUMPY": {"INFERENCE_NUM_THREADS": args.numpy_threads}}})
    assert hetero.get_property("HETERO_NUMBER_OF_SUBMODELS") == 2
    stage_a, stage_b = hetero.submodels()
    x = np.random.default_rng(1).standard_normal((args.rows, args.width), dtype=np.float32)
    mid = stage_a(x)[0]
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")

    rows = []
    for _ in range(args.rounds):
        t_a = latency(stage_a, x, args.seconds / 2)
        t_b = latency(stage_b, mid, args.seconds / 2)
        ceiling = co_run(stage_a, x, stage_b, mid, args.seconds / 2)
        tput = asyncio.run(pipelined(hetero, x, args.in_flight, args.seconds))
        rows.append((t_a, t_b, tput, ceiling))
        print(f"  round: A {t_a * 1e3:.2f} ms, B {t_b * 1e3:.2f} ms, co-run {ceiling:.1f}/s, "
              f"HETERO {tput:.1f}/s = {tput * max(t_a, t_b):.2f} of 1/max, "
              f"{tput / ceiling:.2f} of co-run", flush=True)
    t_a = statistics.median(r[0] for r in rows)
    t_b = statistics.median(r[1] for r in rows)
    tput = statistics.median(r[2] for r in rows)
    ceiling = statistics.median(r[3] for r in rows)
    ratios = [r[2] * max(r[0], r[1]) for r in rows]
    efficiency = [r[2] / r[3] for r in rows]
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model: {args.layers} x (MatMul [{args.rows}x{args.width}] @ [{args.width}x"
          f"{args.width}] + Relu), first half on NUMPY, second on TEMPLATE")
    print(f"stage A (NUMPY) {t_a * 1e3:.2f} ms, stage B (TEMPLATE) {t_b * 1e3:.2f} ms "
          "(medians)")
    print(f"serial bound 1/(A+B) = {1 / (t_a + t_b):.1f}/s, pipeline bound 1/max = "
          f"{1 / max(t_a, t_b):.1f}/s")
    print(f"HETERO, {args.in_flight} in flight: {tput:.1f}/s = {tput * max(t_a, t_b):.2f} of "
          f"1/max (rounds {min(ratios):.2f}..{max(ratios):.2f}), "
          f"{tput * (t_a + t_b):.2f}x the serial bound")
    print(f"co-run ceiling (both stages at once on plain threads) {ceiling:.1f}/s = "
          f"{ceiling * max(t_a, t_b):.2f} of 1/max; HETERO / co-run = "
          f"{statistics.median(efficiency):.2f} (rounds {min(efficiency):.2f}.."
          f"{max(efficiency):.2f})")
    print(f"load average {load_before:.2f} before, {load_after:.2f} after; "
          f"{os.cpu_count()} CPUs")
    hetero.release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
