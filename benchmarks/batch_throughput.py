"""BATCH:NUMPY(N) against NUMPY: throughput of many concurrent single-sample requests.

``python benchmarks/batch_throughput.py [--models bert,cnn] [--tasks 64] [--per-task 10]
[--repeats 5] [--batch 8]``

Each configuration runs ``tasks`` asyncio tasks, each awaiting ``per-task`` single-sample
inferences one after the other (so ``tasks`` requests are in flight throughout). The
configurations are interleaved within each repeat (the host is shared and noisy), one
warm-up round is dropped, and the median throughput of each is reported with its min-max
and the ratio of medians to NUMPY's best hint. Every result is compared with the unbatched
NUMPY result of the same sample (max abs difference).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import numpy as np

import aioinfer
from aioinfer import models
from aioinfer.plugins.batch import BatchCompiledModel

_MODELS = {"bert": ("bert", {}), "cnn": ("cnn", {"batch": "N", "image_size": 32}),
           "cnn64": ("cnn", {"batch": "N", "image_size": 64})}


def _feeds(proto: Any, count: int) -> list[dict[str, np.ndarray]]:
    shapes = None
    if proto.graph.input[0].name == "input":  # the CNN: one image per request
        dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
        shapes = {"input": [1, *dims[1:]]}
    return [models.example_inputs(proto, seed=k, shapes=shapes) for k in range(count)]


async def _round(compiled: Any, feeds: list[dict[str, np.ndarray]], tasks: int,
                 per_task: int) -> tuple[float, list[Any]]:
    results: list[Any] = [None] * (tasks * per_task)

    async def task(t: int) -> None:
        request = compiled.create_infer_request()
        for j in range(per_task):
            k = t * per_task + j
            results[k] = await request.infer_async(feeds[k % len(feeds)])

    start = time.perf_counter()
    await asyncio.gather(*[task(t) for t in range(tasks)])
    return tasks * per_task / (time.perf_counter() - start), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="bert,cnn")
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--per-task", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--timeout", type=int, default=10, help="AUTO_BATCH_TIMEOUT (ms)")
    args = parser.parse_args()
    core = aioinfer.Core()
    for key in args.models.split(","):
        name, kw = _MODELS[key]
        proto = models.get(name, **kw)
        feeds = _feeds(proto, args.tasks * args.per_task)
        configs = {
            "NUMPY LATENCY": ("NUMPY", {}),
            "NUMPY THROUGHPUT": ("NUMPY", {"PERFORMANCE_HINT": "THROUGHPUT"}),
            f"BATCH:NUMPY({args.batch}) LATENCY": (f"BATCH:NUMPY({args.batch})",
                                                    {"AUTO_BATCH_TIMEOUT": args.timeout}),
            f"BATCH:NUMPY({args.batch}) THROUGHPUT": (
                f"BATCH:NUMPY({args.batch})", {"AUTO_BATCH_TIMEOUT": args.timeout,
                                                "PERFORMANCE_HINT": "THROUGHPUT"}),
        }
        compiled = {label: core.compile_model(proto, device, config)
                    for label, (device, config) in configs.items()}
        for label, model in compiled.items():
            reason = (model.get_property("BATCH_UNBATCHED_REASON")
                      if "BATCH_SIZE" in model.get_property("SUPPORTED_PROPERTIES") else "")
            if reason:
                print(f"{key}: {label} runs unbatched: {reason}")
        reference = compiled["NUMPY LATENCY"].create_infer_request()
        want = [{p.name: np.array(r[p.name]) for p in compiled["NUMPY LATENCY"].outputs}
                for r in (reference.infer(f) for f in feeds)]
        speeds: dict[str, list[float]] = {label: [] for label in compiled}
        worst: dict[str, float] = dict.fromkeys(compiled, 0.0)
        for repeat in range(args.repeats + 1):
            for label, model in compiled.items():
                speed, results = asyncio.run(_round(model, feeds, args.tasks, args.per_task))
                for got, expect in zip(results, want, strict=True):
                    for out, value in expect.items():
                        diff = float(np.max(np.abs(np.asarray(got[out]) - value)))
                        worst[label] = max(worst[label], diff)
                if repeat:  # the first round warms up
                    speeds[label].append(speed)
        base = max(statistics.median(speeds["NUMPY LATENCY"]),
                   statistics.median(speeds["NUMPY THROUGHPUT"]))
        print(f"\n{key}: {args.tasks} tasks x {args.per_task} single-sample inferences, "
              f"{args.repeats} interleaved repeats (inferences/s)")
        for label, values in speeds.items():
            median = statistics.median(values)
            extra = ""
            model = compiled[label]
            if isinstance(model, BatchCompiledModel):
                extra = f"  batches {model.statistics()['sizes']}"
            print(f"  {label:28} median {median:8.1f}  min {min(values):8.1f}  max "
                  f"{max(values):8.1f}  x{median / base:5.2f} of NUMPY's best  "
                  f"max|diff| {worst[label]:.2e}{extra}")


if __name__ == "__main__":
    main()
