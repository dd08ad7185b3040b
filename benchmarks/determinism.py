"""NUMPY's results run after run: one compiled model, one input, many runs, a loaded machine.

Two checks, each with a non-zero exit status when it fails:

* **repeat**: per model, one compiled model (LATENCY hint, with and without the compiled
  tier) runs ``--runs`` times on one input while a second process busy-loops every core
  during every other block of runs (so the machine goes from quiet to loaded and back between
  runs); then the same model compiled with the THROUGHPUT hint serves the same input from
  OPTIMAL_NUMBER_OF_INFER_REQUESTS concurrent ``infer_async`` calls. Every output is hashed;
  the check passes when each model gives one distinct output (bytes) over all of its runs
  of one compiled model, whatever the load, the requests in flight or the stream.
* **light**: the nine model-zoo "light" models of the onnx wheel, on the input onnx's backend
  runner feeds them, against their stored outputs with the runner's tolerances, on NUMPY with
  INFERENCE_NUM_THREADS 1 and 2 and NUM_STREAMS 1 and 2 (as many concurrent requests as
  streams); also reported: whether all settings give the same bytes.

    python benchmarks/determinism.py                     # both checks, default models
    python benchmarks/determinism.py --check repeat --runs 100 --models squeezenet gpt2-step
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import compare  # noqa: E402 - the benchmark set's models (randomised light ones, builders)

LIGHT = compare.LIGHT
#: the light models and the tolerances of onnx.backend.test.case.model (atol 1e-7)
LIGHT_RTOL = {"bvlc_alexnet": 1e-3, "densenet121": 2e-3, "inception_v1": 1e-3,
              "inception_v2": 1e-3, "resnet50": 1e-3, "shufflenet": 1e-3, "squeezenet": 1e-3,
              "vgg19": 1e-3, "zfnet512": 1e-3}
DEFAULT_MODELS = ["squeezenet", "shufflenet", "resnet50", "mobilenet_v2", "bert", "gpt2-step",
                  "vit"]
BLOCK = 10  # runs per block: the load is on during every other block


def digest(outputs: Any) -> str:
    """A hash of every output's dtype, shape and bytes."""
    h = hashlib.sha256()
    for value in (outputs.values() if hasattr(outputs, "values") else outputs):
        a = np.ascontiguousarray(np.asarray(value))
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


@contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """``processes`` busy-looping child processes while the block runs."""
    children = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(processes)]
    try:
        time.sleep(0.05)  # let them get onto the cores
        yield
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()


def repeat(path: pathlib.Path, runs: int, load: int, jit: bool) -> tuple[int, int, int, float]:
    """(distinct outputs of one compiled model, the most over the two hints; distinct
    outputs of both together; runs in all; seconds) for ``runs`` loaded/quiet runs of the
    LATENCY model plus the concurrent runs of the THROUGHPUT one."""
    import aioinfer
    from aioinfer import models

    core = aioinfer.Core()
    feeds = models.example_inputs(onnx.load(str(path)))
    seen: set[str] = set()
    start = time.perf_counter()
    compiled = core.compile_model(str(path), "NUMPY", {"PERFORMANCE_HINT": "LATENCY",
                                                       "ENABLE_JIT": jit})
    request = compiled.create_infer_request()
    done = 0
    for block in range(0, runs, BLOCK):
        count = min(BLOCK, runs - block)
        if (block // BLOCK) % 2:
            with cpu_load(load):
                for _ in range(count):
                    seen.add(digest(request.infer(feeds)))
        else:
            for _ in range(count):
                seen.add(digest(request.infer(feeds)))
        done += count
    # the THROUGHPUT hint: several requests in flight, each on whichever stream is free
    streams = core.compile_model(str(path), "NUMPY", {"PERFORMANCE_HINT": "THROUGHPUT",
                                                      "ENABLE_JIT": jit})
    n = int(streams.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    tput: set[str] = set()

    async def serve() -> None:
        async def one() -> None:
            for _ in range(max(1, runs // (2 * n))):
                tput.add(digest(await streams.infer_async(feeds)))
        await asyncio.gather(*(one() for _ in range(n)))

    with cpu_load(load):
        asyncio.run(serve())
    done += max(1, runs // (2 * n)) * n
    # one compiled model must repeat itself; the two hints may differ from each other (the
    # THROUGHPUT model is another compiled model), so count per compiled model
    return max(len(seen), len(tput)), len(seen | tput), done, time.perf_counter() - start


def light_input(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The deterministic input onnx's backend runner generates for the light models."""
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for info in model.graph.input:
        if info.name in inits:
            continue
        dims = info.type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)
        n = int(np.prod(shape))
        feeds[info.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


def light(name: str) -> tuple[bool, int, list[str]]:
    """(every setting passes the runner's check, distinct outputs over the settings, notes)."""
    import aioinfer

    path = LIGHT / f"light_{name}.onnx"
    model = onnx.load(str(path))
    feeds = light_input(model)
    expected = [numpy_helper.to_array(onnx.load_tensor(str(LIGHT / f"light_{name}_output_{k}.pb")))
                for k in range(len(model.graph.output))]
    core, ok, seen, notes = aioinfer.Core(), True, set(), []
    for threads in (1, 2):
        for streams in (1, 2):
            compiled = core.compile_model(str(path), "NUMPY", {
                "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": streams})

            async def serve(compiled: Any = compiled, streams: int = streams) -> list[Any]:
                return list(await asyncio.gather(*(compiled.infer_async(feeds)
                                                   for _ in range(streams))))

            for result in asyncio.run(serve()):
                outputs = list(result.values()) if hasattr(result, "values") else list(result)
                seen.add(digest(outputs))
                for got, want in zip(outputs, expected, strict=True):
                    got = np.asarray(got)
                    err = np.abs(got.astype(np.float64) - want) - 1e-7
                    bad = err > LIGHT_RTOL[name] * np.abs(want)
                    if got.shape != want.shape or bad.any():
                        ok = False
                        notes.append(f"threads={threads} streams={streams}: "
                                     f"{int(bad.sum())} elements outside rtol")
    return ok, len(seen), notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", choices=["repeat", "light", "both"], default="both")
    parser.add_argument("--models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--load", type=int, default=0,
                        help="busy processes during loaded blocks (0 = one per core)")
    args = parser.parse_args()
    from aioinfer.plugins.numpy.kernels import jit
    from aioinfer.plugins.numpy.threads import cores

    load = args.load or cores()
    failed = False
    if args.check in ("repeat", "both"):
        tiers = [True, False] if jit.installed() else [False]
        with tempfile.TemporaryDirectory() as folder:
            paths = compare.build_models(args.models, pathlib.Path(folder))
            print("| model | compiled tier | runs | distinct outputs per compiled model | "
                  "distinct over both hints | s |\n|---|---|---|---|---|---|")
            for name in args.models:
                for tier in tiers:
                    distinct, both, runs, seconds = repeat(paths[name], args.runs, load, tier)
                    failed |= distinct != 1
                    print(f"| {name} | {'on' if tier else 'off'} | {runs} | {distinct} | {both} "
                          f"| {seconds:.1f} |", flush=True)
    if args.check in ("light", "both"):
        print("\n| light model | passes (threads 1/2 x streams 1/2) | distinct outputs | notes |"
              "\n|---|---|---|---|")
        for name in sorted(LIGHT_RTOL):
            if not (LIGHT / f"light_{name}.onnx").exists():
                print(f"| {name} | not shipped by this onnx wheel | | |")
                continue
            ok, distinct, notes = light(name)
            failed |= not ok
            print(f"| {name} | {'yes' if ok else 'NO'} | {distinct} | {'; '.join(notes)} |",
                  flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
