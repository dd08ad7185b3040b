"""The onnxruntime face: the example EP's fused chains vs NUMPY op by op, and cache_dir's
warm vs cold session creation.

Usage: ``python benchmarks/ort_face.py [--repeat N] [--size N]``.

1. ``chain``: a float32 elementwise chain (Mul, Add, Sigmoid, Mul, LeakyRelu, Sub, Relu) on a
   ``[size, 1024]`` tensor, run by the example plugin EP (one numba loop) and by NUMPY (one
   kernel and one temporary per op). Runs are interleaved; medians, their ratio and the spread
   (max/min of each side) are printed.
2. ``partitioned``: the chain between two MatMuls, the EP chosen with ``get_ep_devices`` +
   ``add_provider_for_devices`` (HETERO: the chain on the EP, the MatMuls on NUMPY) against
   NUMPY running all of it, interleaved.
4. ``epcontext``: fresh processes compiling the model file against fresh processes loading
   the EPContext model one wrote (session creation, first run, the compile steps seen).
3. ``cache``: session creation of a ResNet-50-sized ``aioinfer.models.cnn`` from a file, per
   ``device_type`` (``CPU``: the OpenVINO engine behind the CPU proxy; ``NUMPY``): without
   ``cache_dir``, with it cold (compile, export, write) and warm (read, check, import),
   alternated, each in a fresh Core; warm results are checked bit for bit.
The host is shared and noisy: read the spread before the ratio.
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import aioinfer
import aioinfer.onnxruntime as ort
from aioinfer import models


def chain_model(rows: int, cols: int = 1024) -> onnx.ModelProto:
    """x -> Mul, Add, Sigmoid, Mul (by x), LeakyRelu, Sub, Relu -> y."""
    consts = {"k": 1.5, "c": -0.25, "d": 0.5}
    inits = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in consts.items()]
    nodes = [helper.make_node("Mul", ["x", "k"], ["a"]), helper.make_node("Add", ["a", "c"], ["b"]),
             helper.make_node("Sigmoid", ["b"], ["s"]), helper.make_node("Mul", ["s", "x"], ["m"]),
             helper.make_node("LeakyRelu", ["m"], ["r"], alpha=0.1),
             helper.make_node("Sub", ["r", "d"], ["t"]), helper.make_node("Relu", ["t"], ["y"])]
    shape = [rows, cols]
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def bench_chain(repeat: int, rows: int) -> None:
    ort.register_execution_provider_library("FusedElementwise",
                                            "aioinfer.ort.ep.examples.fused_elementwise")
    proto = chain_model(rows).SerializeToString()
    core = aioinfer.Core()
    fused = ort.InferenceSession(proto, providers=["FusedElementwise"], core=core)
    numpy = ort.InferenceSession(proto, providers=[("OpenVINOExecutionProvider",
                                                    {"device_type": "NUMPY"})], core=core)
    x = np.random.default_rng(0).standard_normal((rows, 1024)).astype(np.float32)
    np.testing.assert_allclose(fused.run(None, {"x": x})[0], numpy.run(None, {"x": x})[0],
                               rtol=1e-5, atol=1e-6)
    times: dict[str, list[float]] = {"fused EP": [], "NUMPY": []}
    for _ in range(repeat):
        for label, session in (("fused EP", fused), ("NUMPY", numpy)):
            start = time.perf_counter()
            for _ in range(10):
                session.run(None, {"x": x})
            times[label].append((time.perf_counter() - start) / 10 * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"chain of 7 elementwise ops on [{rows},1024] float32, {repeat} interleaved rounds")
    for label, values in times.items():
        print(f"  {label:9s} median {med[label]:7.3f} ms  spread max/min "
              f"{max(values) / min(values):.2f}")
    print(f"  NUMPY / fused EP = {med['NUMPY'] / med['fused EP']:.2f}x")


def _session(path: pathlib.Path, device: str, cache_dir: pathlib.Path | None) -> Any:
    options = [{"device_type": device, "cache_dir": str(cache_dir or "")}]
    return ort.InferenceSession(str(path), providers=["OpenVINOExecutionProvider"],
                                provider_options=options, core=aioinfer.Core())


def partitioned_model(rows: int, cols: int = 256) -> onnx.ModelProto:
    """MatMul (NUMPY's) -> the elementwise chain (the EP's) -> MatMul (NUMPY's)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((cols, cols)).astype(np.float32) / 16, "W")
    chain = chain_model(rows, cols)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm1")]
    for node in chain.graph.node:
        node.input[:] = ["h" if n == "x" else n for n in node.input]
        node.output[:] = ["z" if n == "y" else n for n in node.output]
        nodes.append(node)
    nodes.append(helper.make_node("MatMul", ["z", "W"], ["y"], name="mm2"))
    shape = [rows, cols]
    graph = helper.make_graph(nodes, "partitioned",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
                              initializer=[w, *chain.graph.initializer])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def bench_partitioned(repeat: int, rows: int) -> None:
    """The example EP picked through ``get_ep_devices`` + ``add_provider_for_devices``: HETERO
    gives it the chain and NUMPY the MatMuls; against NUMPY running the whole model."""
    core = aioinfer.Core()
    core.set_property("CPU", {"MULTI_DEVICE_PRIORITIES": "NUMPY"})  # the fallback is NUMPY
    proto = partitioned_model(rows).SerializeToString()
    options = ort.SessionOptions()
    options.add_provider_for_devices([d for d in ort.get_ep_devices()
                                      if d.ep_name == "FusedElementwise"], {"min_chain": "2"})
    fused = ort.InferenceSession(proto, options, core=core)
    parts = sorted(m.device for m in fused.compiled_model.submodels())
    numpy = ort.InferenceSession(proto, providers=[("OpenVINOExecutionProvider",
                                                    {"device_type": "NUMPY"})], core=core)
    x = np.random.default_rng(1).standard_normal((rows, 256)).astype(np.float32)
    np.testing.assert_allclose(fused.run(None, {"x": x})[0], numpy.run(None, {"x": x})[0],
                               rtol=1e-4, atol=1e-4)
    times: dict[str, list[float]] = {"EP + NUMPY": [], "NUMPY": []}
    for _ in range(repeat):
        for label, session in (("EP + NUMPY", fused), ("NUMPY", numpy)):
            start = time.perf_counter()
            for _ in range(10):
                session.run(None, {"x": x})
            times[label].append((time.perf_counter() - start) / 10 * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"MatMul -> 7-op chain -> MatMul on [{rows},256] float32 through get_ep_devices + "
          f"add_provider_for_devices: {fused.device}, parts {parts}; {repeat} rounds")
    for label, values in times.items():
        print(f"  {label:10s} median {med[label]:7.3f} ms  spread max/min "
              f"{max(values) / min(values):.2f}")
    ratios = [n / f for f, n in zip(times["EP + NUMPY"], times["NUMPY"], strict=True)]
    print(f"  NUMPY / (EP + NUMPY) = {med['NUMPY'] / med['EP + NUMPY']:.2f}x (paired median "
          f"{statistics.median(ratios):.2f}x, min {min(ratios):.2f}x)")


FRESH = r"""
import cProfile, pstats, sys, time
import numpy as np
import aioinfer.onnxruntime as ort
profile = cProfile.Profile()
start = time.perf_counter()
profile.enable()
session = ort.InferenceSession(sys.argv[1], providers=[("OpenVINOExecutionProvider",
                               {"device_type": sys.argv[2]})])
profile.disable()
made = time.perf_counter() - start
called = {f"{where[0]}:{where[2]}" for where in pstats.Stats(profile).stats}
steps = sorted({c.split("/aioinfer/")[-1] for c in called if c.endswith((
    "compiler.py:compile_graph", "pipeline.py:optimize", "core.py:compile_model",
    "plugin.py:compile_model", "convert.py:read", "checker.py:check_model"))})
x = np.random.default_rng(0).standard_normal((1, 3, 224, 224), dtype=np.float32)
start = time.perf_counter()
session.run(None, {"input": x})
print(made, time.perf_counter() - start, ";".join(steps) or "-")
"""


def bench_epcontext(repeat: int, devices: list[str]) -> None:
    """Fresh processes, alternated: one compiling the model file, one loading the EPContext
    model (embed mode 0) an earlier process wrote; the time to create the session (imports
    excluded), the first run, and the compile steps cProfile saw."""
    import subprocess
    import sys

    folder = pathlib.Path(tempfile.mkdtemp(prefix="aioinfer-epctx-bench-"))
    path = folder / "resnet50ish.onnx"
    onnx.save(models.get("cnn", widths=(64, 128, 256, 512), blocks_per_stage=4), path)
    print(f"fresh processes: compile the model file vs load its EPContext model, {repeat} "
          "alternated rounds after one warm-up round")
    for device in devices:
        options = ort.SessionOptions()
        options.add_session_config_entry("ep.context_enable", "1")
        options.add_session_config_entry("ep.context_file_path", str(folder / f"{device}.onnx"))
        ort.InferenceSession(str(path), options, providers=[("OpenVINOExecutionProvider",
                             {"device_type": device})], core=aioinfer.Core())
        runs: dict[str, list[tuple[float, float, str]]] = {"compile": [], "EPContext": []}
        for round_ in range(repeat + 1):
            for label, source in (("compile", path), ("EPContext", folder / f"{device}.onnx")):
                done = subprocess.run([sys.executable, "-c", FRESH, str(source), device],
                                      capture_output=True, text=True, timeout=600, check=True)
                made, ran, steps = done.stdout.split()
                if round_:
                    runs[label].append((float(made), float(ran), steps))
        for label, values in runs.items():
            print(f"  {device:6s} {label:9s} session median "
                  f"{statistics.median(v[0] for v in values) * 1e3:7.1f} ms  first run median "
                  f"{statistics.median(v[1] for v in values) * 1e3:6.1f} ms  steps seen: "
                  f"{sorted({v[2] for v in values})}")
        ratio = statistics.median(v[0] for v in runs["EPContext"]) / statistics.median(
            v[0] for v in runs["compile"])
        print(f"  {device:6s} EPContext / compile = {ratio:.3f}")
    shutil.rmtree(folder, ignore_errors=True)


LABELS = ("no cache", "cold", "warm")


def bench_cache(repeat: int, devices: list[str]) -> None:
    """Session creation without ``cache_dir`` (a plain compile), with it cold (empty cache:
    compile, export, write) and warm, alternated per device; each in a fresh Core, the first
    inference timed apart."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="aioinfer-cache-bench-"))
    path = folder / "resnet50ish.onnx"
    onnx.save(models.get("cnn", widths=(64, 128, 256, 512), blocks_per_stage=4), path)
    feeds = {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224),
                                                                dtype=np.float32)}
    size = path.stat().st_size / 1e6
    print(f"session creation, cnn widths 64..512 x4 blocks ({size:.0f} MB) with cache_dir, "
          f"{repeat} alternated rounds after one warm-up round")
    times: dict[tuple[str, str], list[float]] = {}
    first: dict[tuple[str, str], list[float]] = {}
    results: dict[str, np.ndarray] = {}
    for round_ in range(repeat + 1):
        for device in devices:
            cache_dir = folder / f"cache-{device}"
            for label in LABELS:
                if label == "cold":
                    shutil.rmtree(cache_dir, ignore_errors=True)
                start = time.perf_counter()
                session = _session(path, device, None if label == "no cache" else cache_dir)
                made = time.perf_counter() - start
                start = time.perf_counter()
                out = session.run(None, feeds)[0]
                ran = time.perf_counter() - start
                if label == "warm" and not session.loaded_from_cache:
                    raise SystemExit(f"{device}: the warm session did not load from the cache")
                if round_ == 0:
                    continue
                times.setdefault((device, label), []).append(made)
                first.setdefault((device, label), []).append(ran)
                expected = results.setdefault(device, out)
                if not np.array_equal(out, expected):
                    raise SystemExit(f"{device} {label}: results differ from the first run")
    for device in devices:
        med = {label: statistics.median(times[(device, label)]) for label in LABELS}
        for label in LABELS:
            values = times[(device, label)]
            print(f"  {device:6s} {label:8s} median {med[label] * 1e3:7.1f} ms  spread max/min "
                  f"{max(values) / min(values):.2f}  first run median "
                  f"{statistics.median(first[(device, label)]) * 1e3:6.1f} ms")
        for base in ("cold", "no cache"):
            ratios = [w / c for c, w in zip(times[(device, base)], times[(device, "warm")],
                                            strict=True)]
            print(f"  {device:6s} warm / {base} = {med['warm'] / med[base]:.3f} (paired ratios "
                  f"median {statistics.median(ratios):.3f}, max {max(ratios):.3f})")
    shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--size", type=int, default=256, help="rows of the chain's tensor")
    parser.add_argument("--skip-cache", action="store_true")
    parser.add_argument("--skip-chain", action="store_true")
    parser.add_argument("--skip-epcontext", action="store_true")
    parser.add_argument("--cache-devices", default="CPU,NUMPY",
                        help="device_type values for the cache benchmark (comma-separated)")
    args = parser.parse_args()
    if not args.skip_chain:
        bench_chain(args.repeat, args.size)
        bench_partitioned(args.repeat, 4 * args.size)
    if not args.skip_cache:
        bench_cache(max(3, args.repeat // 3), args.cache_devices.split(","))
    if not args.skip_epcontext:
        bench_epcontext(max(2, args.repeat // 5), args.cache_devices.split(","))


if __name__ == "__main__":
    main()
