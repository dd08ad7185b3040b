"""What compiling costs: NUMPY with an empty and a warm numba cache, without the compiled tier,
and onnxruntime, each in a fresh process (import, compile, first and steady inference, peak RSS).

Every case runs in a child process of its own, so imports (numba's ~0.2 s) and peak RSS are
its own (the input comes from a file: onnxruntime's child never imports aioinfer); "cold"
points the compiled tier's cache (``AIOINFER_CACHE_DIR``) at an empty folder,
"warm" runs again on the folder cold filled. Cases alternate over ``--repeat`` rounds and
medians are reported.

    python benchmarks/compile_cost.py --models resnet50 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

CASES = ["numpy-jit-cold", "numpy-jit-warm", "numpy-nojit", "onnxruntime"]

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()


def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss keeps the forking parent's across exec)
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024



path, case, inputs = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy as np
with np.load(inputs) as saved:  # made by the parent: onnxruntime's child never imports aioinfer
    feeds = {name: saved[name] for name in saved.files}
if case == "onnxruntime":
    import onnxruntime as ort
    t_import = time.perf_counter()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    run = lambda: session.run(None, feeds)
else:
    import aioinfer
    t_import = time.perf_counter()
    compiled = aioinfer.Core().compile_model(path, "NUMPY", {
        "PERFORMANCE_HINT": "LATENCY", "ENABLE_JIT": case != "numpy-nojit"})
    request = compiled.create_infer_request()
    run = lambda: request.infer(feeds)
t_compiled = time.perf_counter()
run()
t_first = time.perf_counter()
steady = []
for _ in range(10):
    s = time.perf_counter(); run(); steady.append(time.perf_counter() - s)
steady.sort()
print(json.dumps({"import_s": t_import - t0, "compile_s": t_compiled - t_import,
                  "first_s": t_first - t_compiled, "steady_s": steady[len(steady) // 2],
                  "rss_mb": peak_mb()}))
"""


def child(path: pathlib.Path, case: str, cache: pathlib.Path) -> dict[str, float]:
    """One case in a fresh process: its timings and peak RSS."""
    env = dict(os.environ, AIOINFER_CACHE_DIR=str(cache))
    env.pop("NUMBA_CACHE_DIR", None)
    env["PYTHONPATH"] = os.pathsep.join([str(pathlib.Path(__file__).resolve().parents[1]),
                                         env.get("PYTHONPATH", "")])
    inputs = path.with_suffix(".npz")
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), case, str(inputs)], env=env,
                         check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    import compare

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["resnet50"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = pathlib.Path(folder)
        paths = compare.build_models(args.models, root)
        from aioinfer import models

        for path in paths.values():
            feeds: dict[str, Any] = models.example_inputs(onnx.load(str(path)))
            np.savez(path.with_suffix(".npz"), **feeds)
        print("| model | case | import s | compile s | first infer ms | steady ms | first/steady |"
              " peak RSS MB |\n|---|---|---|---|---|---|---|---|")
        for name in args.models:
            runs: dict[str, list[dict[str, float]]] = {c: [] for c in CASES}
            for round_ in range(args.repeat):
                cache = root / f"cache-{name}-{round_}"  # empty: "cold" fills it, "warm" reads
                for case in CASES:
                    runs[case].append(child(paths[name], case, cache))
            for case in CASES:
                med = {k: statistics.median(r[k] for r in runs[case]) for k in runs[case][0]}
                print(f"| {name} | {case} | {med['import_s']:.2f} | {med['compile_s']:.2f} | "
                      f"{med['first_s'] * 1e3:.1f} | {med['steady_s'] * 1e3:.1f} | "
                      f"{med['first_s'] / med['steady_s']:.2f}x | {med['rss_mb']:.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
