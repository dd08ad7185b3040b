"""MULTI:NUMPY,TEMPLATE against NUMPY alone: throughput with many tasks in flight.

``python benchmarks/multi_throughput.py [--model bert] [--tasks 16] [--per-task 10]
[--repeats 5]``

TEMPLATE is ~10x slower than NUMPY and both share the host's cores: a round-robin MULTI
would run at TEMPLATE's pace. The configurations are interleaved within each repeat (the
host is shared and noisy), one warm-up round is dropped, and medians with min-max and the
ratio to NUMPY's best hint are reported, with how many runs each device served.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aioinfer
from aioinfer import models


async def _round(compiled: Any, feeds: Any, tasks: int, per_task: int) -> float:
    async def task() -> None:
        request = compiled.create_infer_request()
        for _ in range(per_task):
            await request.infer_async(feeds)

    start = time.perf_counter()
    await asyncio.gather(*[task() for _ in range(tasks)])
    return tasks * per_task / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert")
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--per-task", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    proto = models.get(args.model)
    feeds = models.example_inputs(proto)
    core = aioinfer.Core()
    configs = {
        "NUMPY LATENCY": ("NUMPY", {}),
        "NUMPY THROUGHPUT": ("NUMPY", {"PERFORMANCE_HINT": "THROUGHPUT"}),
        "MULTI:NUMPY,TEMPLATE": ("MULTI:NUMPY,TEMPLATE", {}),
        "MULTI DEVICE_PRIORITY": ("MULTI:NUMPY,TEMPLATE", {"SCHEDULE_POLICY": "DEVICE_PRIORITY"}),
    }
    compiled = {label: core.compile_model(proto, device, config)
                for label, (device, config) in configs.items()}
    speeds: dict[str, list[float]] = {label: [] for label in compiled}
    for repeat in range(args.repeats + 1):
        for label, model in compiled.items():
            speed = asyncio.run(_round(model, feeds, args.tasks, args.per_task))
            if repeat:
                speeds[label].append(speed)
    base = max(statistics.median(speeds["NUMPY LATENCY"]),
               statistics.median(speeds["NUMPY THROUGHPUT"]))
    print(f"{args.model}: {args.tasks} tasks x {args.per_task} inferences, {args.repeats} "
          "interleaved repeats (inferences/s)")
    for label, values in speeds.items():
        median = statistics.median(values)
        served = ""
        stats = getattr(compiled[label], "statistics", None)
        if stats is not None:
            served = "  served " + ", ".join(
                f"{d} {s['completed']}" for d, s in stats().items())
        print(f"  {label:24} median {median:8.1f}  min {min(values):8.1f}  max "
              f"{max(values):8.1f}  x{median / base:5.2f} of NUMPY's best{served}")


if __name__ == "__main__":
    main()
