"""MULTI:NUMPY,TEMPLATE against NUMPY alone: throughput with many tasks in flight.

``python benchmarks/multi_throughput.py [--model bert] [--tasks 16] [--per-task 20]
[--repeats 9] [--no-device-priority] [--devices MULTI:NUMPY,TEMPLATE]``

TEMPLATE is ~10x slower than NUMPY and both share the host's cores: a round-robin MULTI
would run at TEMPLATE's pace. Each repeat runs every configuration once, in a shuffled order
(the host is shared and noisy); a warm-up round is dropped. Reported per configuration: the
median throughput with min-max, the median over repeats of its ratio to NUMPY THROUGHPUT in
the same repeat (paired), the process's CPU time per inference (user + system: less
sensitive than wall time to other processes on a shared host; paired too), how many runs
each device served, and the host's load average. Every inference has its own tagged input
(one of 8 distinct samples) and its result is compared with NUMPY's for that sample: a
result that is missing, delivered twice or wrong is counted and reported.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from typing import Any

import numpy as np

import aioinfer
from aioinfer import models


def _samples(proto: Any, count: int) -> list[dict[str, np.ndarray]]:
    """``count`` distinct valid inputs: the example inputs rolled along their last axis."""
    base = models.example_inputs(proto)
    return [{name: np.ascontiguousarray(np.roll(value, k, axis=-1))
             for name, value in base.items()} for k in range(count)]


async def _round(compiled: Any, samples: list[dict[str, np.ndarray]],
                 expected: list[list[np.ndarray]], tasks: int,
                 per_task: int) -> tuple[float, float, int]:
    """Throughput of one round, the process's CPU seconds per inference, and how many
    results were missing, doubled or wrong."""
    got = [0] * (tasks * per_task)
    wrong = 0

    async def task(t: int) -> None:
        nonlocal wrong
        request = compiled.create_infer_request()
        for j in range(per_task):
            tag = t * per_task + j
            result = (await request.infer_async(samples[tag % len(samples)])).to_list()
            got[tag] += 1
            wrong += not all(np.allclose(a, b, rtol=1e-4, atol=1e-5)
                             for a, b in zip(result, expected[tag % len(samples)], strict=True))

    cpu, start = os.times(), time.perf_counter()
    await asyncio.gather(*[task(t) for t in range(tasks)])
    speed = tasks * per_task / (time.perf_counter() - start)
    end = os.times()
    used = (end.user + end.system - cpu.user - cpu.system) / (tasks * per_task)
    return speed, used, wrong + sum(count != 1 for count in got)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--per-task", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--devices", default="MULTI:NUMPY,TEMPLATE",
                        help="the MULTI device to measure (e.g. MULTI:NUMPY(1),TEMPLATE)")
    parser.add_argument("--no-device-priority", action="store_true",
                        help="skip the DEVICE_PRIORITY row (slow: TEMPLATE's pace)")
    args = parser.parse_args()
    proto = models.get(args.model)
    samples = _samples(proto, 8)
    core = aioinfer.Core()
    configs: dict[str, tuple[str, dict[str, Any]]] = {
        "NUMPY LATENCY": ("NUMPY", {}),
        "NUMPY THROUGHPUT": ("NUMPY", {"PERFORMANCE_HINT": "THROUGHPUT"}),
        f"{args.devices}": (args.devices, {}),
    }
    if not args.no_device_priority:
        configs[f"{args.devices} DEVICE_PRIORITY"] = (
            args.devices, {"SCHEDULE_POLICY": "DEVICE_PRIORITY"})
    compiled = {label: core.compile_model(proto, device, config)
                for label, (device, config) in configs.items()}
    reference = compiled["NUMPY LATENCY"].create_infer_request()
    expected = [reference.infer(sample).to_list() for sample in samples]
    speeds: dict[str, list[float]] = {label: [] for label in compiled}
    cpus: dict[str, list[float]] = {label: [] for label in compiled}
    faults = dict.fromkeys(compiled, 0)
    load = [os.getloadavg()[0]]
    for repeat in range(args.repeats + 1):
        order = list(compiled)
        random.Random(repeat).shuffle(order)
        for label in order:
            speed, used, bad = asyncio.run(_round(compiled[label], samples, expected,
                                                  args.tasks, args.per_task))
            faults[label] += bad
            if repeat:
                speeds[label].append(speed)
                cpus[label].append(used)
        load.append(os.getloadavg()[0])
    base, base_cpu = speeds["NUMPY THROUGHPUT"], cpus["NUMPY THROUGHPUT"]
    print(f"{args.model}: {args.tasks} tasks x {args.per_task} inferences, {args.repeats} "
          f"shuffled interleaved repeats (inferences/s); {os.cpu_count()} CPUs, 1-min load "
          f"{min(load):.1f}-{max(load):.1f}")
    for label, values in speeds.items():
        paired = statistics.median(v / b for v, b in zip(values, base, strict=True))
        cpu = statistics.median(cpus[label]) * 1e3
        cpu_paired = statistics.median(
            c / b for c, b in zip(cpus[label], base_cpu, strict=True))
        served = ""
        stats = getattr(compiled[label], "statistics", None)
        if stats is not None:
            served = "  served " + ", ".join(
                f"{d} {s['completed']}" for d, s in stats().items())
        print(f"  {label:36} median {statistics.median(values):7.1f}  min {min(values):7.1f}  "
              f"max {max(values):7.1f}  paired x{paired:5.2f} of NUMPY THROUGHPUT  CPU "
              f"{cpu:5.2f} ms/inference (x{cpu_paired:4.2f})  lost/doubled/wrong "
              f"{faults[label]}{served}")


if __name__ == "__main__":
    main()
