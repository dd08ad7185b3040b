"""Soak: N ``infer_async`` calls from many concurrent tasks, every result checked.

``python benchmarks/soak.py [--model add|squeezenet] [--device NUMPY] [--requests 100000]
[--tasks 256] [--every 10000] [--json out.json]``

Each of ``--tasks`` asyncio tasks has its own infer request and takes the next request number
(its tag) from a shared counter until ``--requests`` are taken. The tag is in the input: for
``add`` (y = a + b, a [1, 16] filled with the tag, b = 0..15, an exact float32 result for tags
below 2**24), the output must be ``tag + 0..15``; for ``squeezenet`` (onnx's light model) the
input is one of 64 fixed images (tag % 64) and the output must be bit-identical to that
image's result computed before the soak. A result that matches another tag is misdelivered;
a tag served twice is a duplicate; a tag never served is lost. Every ``--every`` requests the
resident memory (``/proc/self/statm``) and ``threading.active_count()`` are printed.

Devices: any device string. ``HETERO:NUMPY,TEMPLATE`` runs ``add`` as Add on NUMPY then Relu
on TEMPLATE (AFFINITY), a transfer between them; ``BATCH:NUMPY(8)`` batches ``add`` (its
batch dimension is dynamic). At the end: the RSS growth between the ``--every``-th sample
after warm-up (the 10,000th request by default) and the last, and the thread count before
the model was compiled, after warm-up, at the end, and after the compiled model and Core are
released.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import pathlib
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

import aioinfer

_PAGE = os.sysconf("SC_PAGE_SIZE")
LIGHT = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def rss_mb() -> float:
    """Resident memory of this process, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def add_model(relu: bool = False) -> onnx.ModelProto:
    """y = a + b (then Relu, for a second node to put on another device), batch dynamic."""
    nodes = [helper.make_node("Add", ["a", "b"], ["s" if relu else "y"], name="add")]
    if relu:
        nodes.append(helper.make_node("Relu", ["s"], ["y"], name="relu"))
    graph = helper.make_graph(
        nodes, "soak_add",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 16]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 16])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


class Workload:
    """Inputs for a tag, and the check of a result against it."""

    def __init__(self, name: str, compiled: Any) -> None:
        self.name = name
        self.offsets = np.arange(16, dtype=np.float32)[None]
        if name == "squeezenet":
            port = compiled.inputs[0]
            rng = np.random.default_rng(0)
            self.images = [rng.standard_normal(tuple(port.shape)).astype(np.float32)
                           for _ in range(64)]
            request = compiled.create_infer_request()
            self.expected = [request.infer([im])[0].copy() for im in self.images]

    def inputs(self, tag: int) -> list[np.ndarray]:
        if self.name == "squeezenet":
            return [self.images[tag % 64]]
        return [np.full((1, 16), tag, np.float32), self.offsets]

    def served_tag(self, tag: int, result: Any) -> int | None:
        """The tag ``result`` belongs to (``tag`` if right; None if it matches none)."""
        y = np.asarray(result[0])
        if self.name == "squeezenet":
            if np.array_equal(y, self.expected[tag % 64]):
                return tag
            for k, want in enumerate(self.expected):
                if np.array_equal(y, want):
                    return k  # another image's result: misdelivered
            return None
        got = y - self.offsets
        if got.shape == (1, 16) and np.all(got == got[0, 0]) and float(got[0, 0]).is_integer():
            return int(got[0, 0])
        return None


async def soak(compiled: Any, work: Workload, n: int, tasks: int, every: int,
               show: Callable[[str], None]) -> dict[str, Any]:
    next_tag = 0
    # tag -> times served, preallocated so that the soak's own books do not grow the RSS
    served = np.zeros(n, np.uint8)
    n_served = 0
    errors: list[str] = []
    misdelivered = 0
    samples: list[dict[str, Any]] = []
    started = time.perf_counter()

    def sample() -> None:
        done = n_served
        samples.append({"served": done, "rss_mb": round(rss_mb(), 1),
                        "threads": threading.active_count(),
                        "seconds": round(time.perf_counter() - started, 1)})
        show(f"  {done:>8} served  rss {samples[-1]['rss_mb']:8.1f} MiB  threads "
             f"{samples[-1]['threads']:3d}  {samples[-1]['seconds']:7.1f} s  errors "
             f"{len(errors)}  misdelivered {misdelivered}")

    async def worker() -> None:
        nonlocal next_tag, misdelivered, n_served
        request = compiled.create_infer_request()
        while next_tag < n:
            tag = next_tag
            next_tag += 1
            try:
                result = await request.infer_async(work.inputs(tag))
            except Exception as exc:  # noqa: BLE001 - counted, the soak goes on
                errors.append(f"{tag}: {type(exc).__name__}: {exc}"[:300])
                continue
            got = work.served_tag(tag, result)
            if got != tag:
                misdelivered += 1
            else:
                served[tag] += 1
                n_served += 1
                if n_served % every == 0:
                    sample()

    sample()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    elapsed = time.perf_counter() - started
    sample()
    duplicates = int(np.maximum(served.astype(np.int64) - 1, 0).sum())
    lost = n - int(np.count_nonzero(served)) - len(errors) - misdelivered
    return {"requests": n, "served": n_served, "errors": len(errors),
            "first_errors": errors[:5], "lost": lost, "misdelivered": misdelivered,
            "duplicates": duplicates, "seconds": round(elapsed, 1),
            "per_second": round(n / elapsed, 1), "samples": samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["add", "squeezenet"], default="add")
    parser.add_argument("--device", default="NUMPY")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=256)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args()

    threads_before = threading.active_count()
    core = aioinfer.Core()
    config: dict[str, Any] = {}
    if args.model == "squeezenet":
        proto: Any = str(LIGHT / "light_squeezenet.onnx")
    else:
        hetero = args.device.startswith("HETERO")
        proto = add_model(relu=hetero)
        if hetero:
            config = {"AFFINITY": {"add": "NUMPY", "relu": "TEMPLATE"}}
    compiled = core.compile_model(proto, args.device, config)
    work = Workload(args.model, compiled)
    warm = asyncio.run(soak(compiled, work, min(2 * args.tasks, args.requests), args.tasks,
                            10**9, lambda _: None))
    threads_warm = threading.active_count()
    print(f"{args.model} on {args.device}: {args.requests} requests from {args.tasks} tasks "
          f"(warm-up {warm['requests']}: {warm['errors']} errors); threads before compiling "
          f"{threads_before}, after warm-up {threads_warm}")
    report = asyncio.run(soak(compiled, work, args.requests, args.tasks, args.every, print))
    time.sleep(0.5)
    threads_end = threading.active_count()
    release = getattr(compiled, "release", None)
    if release is not None:
        release()
    del compiled, work, core
    gc.collect()
    time.sleep(0.5)
    threads_released = threading.active_count()
    samples = report["samples"]
    after_warm = next((s for s in samples if s["served"] >= args.every), samples[0])
    growth = samples[-1]["rss_mb"] - after_warm["rss_mb"]
    report.update({"model": args.model, "device": args.device, "tasks": args.tasks,
                   "threads_before": threads_before, "threads_warm": threads_warm,
                   "threads_end": threads_end, "threads_released": threads_released,
                   "rss_growth_mb": round(growth, 1),
                   "rss_growth_from": after_warm["served"]})
    print(f"served {report['served']} of {report['requests']} in {report['seconds']} s "
          f"({report['per_second']}/s): errors {report['errors']}, lost {report['lost']}, "
          f"misdelivered {report['misdelivered']}, duplicates {report['duplicates']}")
    print(f"RSS {after_warm['rss_mb']} MiB at request {after_warm['served']} -> "
          f"{samples[-1]['rss_mb']} MiB at {samples[-1]['served']}: {growth:+.1f} MiB; threads "
          f"before {threads_before}, warm {threads_warm}, end {threads_end}, released "
          f"{threads_released}")
    for line in report["first_errors"]:
        print("  error", line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    bad = report["errors"] or report["lost"] or report["misdelivered"] or report["duplicates"]
    return 1 if bad or threads_end > threads_warm else 0


if __name__ == "__main__":
    sys.exit(main())
