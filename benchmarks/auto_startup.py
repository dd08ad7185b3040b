"""AUTO's start-up fallback, timed: results served while the chosen device still compiles.

``python benchmarks/auto_startup.py [--model bert] [--devices AUTO:NUMPY,TEMPLATE]
[--tasks 4] [--after 40] [--repeats 3]``

In a fresh process NUMPY's compile of the BERT-like encoder takes seconds (its compiled tier
loads and warms its kernels), TEMPLATE's a fraction of one. ``AUTO:NUMPY,TEMPLATE`` chooses
NUMPY; with ``ENABLE_STARTUP_FALLBACK`` (the default) TEMPLATE compiles beside it and serves
until NUMPY is ready. Each repeat runs both settings, each in a fresh subprocess (so neither
finds the other's warm kernels in memory), with ``tasks`` tasks inferring back to back from
the moment ``compile_model`` returns until each has had ``after`` results from the chosen
device. Reported: when ``compile_model`` returned, when the first result arrived, when the
chosen device finished compiling (seconds from the start of the process's compile call),
the results served by each device, and the results that failed, went missing or twice, or
were wrong (each inference has a tagged input; every result is compared with the chosen
device's own result for that input afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np


def _child(args: argparse.Namespace) -> dict[str, Any]:
    import aioinfer
    from aioinfer import models

    proto = models.get(args.model)
    base = models.example_inputs(proto)
    samples = [{name: np.ascontiguousarray(np.roll(value, k, axis=-1))
                for name, value in base.items()} for k in range(8)]
    core = aioinfer.Core()
    start = time.perf_counter()
    compiled = core.compile_model(proto, args.devices,
                                  {"ENABLE_STARTUP_FALLBACK": bool(args.fallback)})
    returned = time.perf_counter() - start
    startup = compiled.startup  # type: ignore[attr-defined]
    actual = startup.actual
    results: list[tuple[float, int, list[Any]]] = []
    failed: list[str] = []

    async def task(t: int) -> None:
        request = compiled.create_infer_request()
        j = after = 0
        while after < args.after and time.perf_counter() - start < args.limit:
            tag = t * 1_000_000 + j
            j += 1
            try:
                result = await request.infer_async(samples[tag % len(samples)])
            except aioinfer.errors.AioInferError as exc:
                failed.append(repr(exc))
                continue
            results.append((time.perf_counter() - start, tag, result.to_list()))
            after += compiled.get_property("EXECUTION_DEVICES") == [actual]

    async def run() -> None:
        await asyncio.gather(*[task(t) for t in range(args.tasks)])

    asyncio.run(run())
    ready = startup.compiled_at[actual] - start
    stats = compiled.statistics()  # type: ignore[attr-defined]
    served = {device: s["completed"] for device, s in stats.items()}
    reference = core.compile_model(proto, actual).create_infer_request()
    expected = [reference.infer(sample).to_list() for sample in samples]
    tags = [tag for _, tag, _ in results]
    wrong = sum(not all(np.allclose(a, b, rtol=1e-4, atol=1e-5)
                        for a, b in zip(out, expected[tag % len(samples)], strict=True))
                for _, tag, out in results)
    return {"returned": returned, "first": min(t for t, _, _ in results), "ready": ready,
            "before_ready": sum(t < ready for t, _, _ in results), "served": served,
            "failed": len(failed), "doubled": len(tags) - len(set(tags)), "wrong": wrong,
            "results": len(results), "errors": failed[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bert")
    parser.add_argument("--devices", default="AUTO:NUMPY,TEMPLATE")
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--after", type=int, default=40,
                        help="results each task gets from the chosen device before it stops")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds, at most")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fallback", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args)))
        return
    runs: dict[str, list[dict[str, Any]]] = {"ENABLE_STARTUP_FALLBACK=YES": [],
                                            "ENABLE_STARTUP_FALLBACK=NO": []}
    load = [os.getloadavg()[0]]
    for _ in range(args.repeats):
        for label, fallback in (("ENABLE_STARTUP_FALLBACK=YES", 1),
                                ("ENABLE_STARTUP_FALLBACK=NO", 0)):
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--fallback", str(fallback),
                 "--model", args.model, "--devices", args.devices, "--tasks", str(args.tasks),
                 "--after", str(args.after), "--limit", str(args.limit)],
                capture_output=True, text=True, check=True, timeout=args.limit + 120)
            runs[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
            load.append(os.getloadavg()[0])
    print(f"{args.devices} on {args.model}: {args.tasks} tasks, {args.repeats} repeats, each "
          f"in a fresh process; {os.cpu_count()} CPUs, 1-min load {min(load):.1f}-"
          f"{max(load):.1f}; seconds from the compile call, medians (min-max)")
    for label, values in runs.items():
        def col(key: str, values: list[dict[str, Any]] = values) -> str:
            xs = [v[key] for v in values]
            return f"{statistics.median(xs):6.2f} ({min(xs):.2f}-{max(xs):.2f})"

        served: dict[str, int] = {}
        for v in values:
            for device, count in v["served"].items():
                served[device] = served.get(device, 0) + count
        print(f"  {label}: compile_model returned {col('returned')}, first result "
              f"{col('first')}, chosen device ready {col('ready')}")
        print(f"    first result before the chosen device was ready in "
              f"{sum(v['first'] < v['ready'] for v in values)} of {len(values)} runs; results "
              f"before it was ready {[v['before_ready'] for v in values]}; served {served}; "
              f"failed {sum(v['failed'] for v in values)}, doubled "
              f"{sum(v['doubled'] for v in values)}, wrong {sum(v['wrong'] for v in values)} "
              f"of {sum(v['results'] for v in values)}")
        for v in values:
            for error in v["errors"]:
                print(f"    error: {error}")


if __name__ == "__main__":
    main()
