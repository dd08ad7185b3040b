"""The ``aioinfer`` command, run in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aioinfer import models

ROOT = Path(__file__).resolve().parents[1]
SMALL_CNN = "cnn:image_size=64"


def aioinfer(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "aioinfer.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_devices_lists_cpu_with_properties() -> None:
    proc = aioinfer("devices")
    assert proc.returncode == 0, proc.stderr
    assert "CPU" in proc.stdout and "FULL_DEVICE_NAME" in proc.stdout  # a rich table
    proc = aioinfer("devices", "--json")
    assert proc.returncode == 0, proc.stderr
    devices = json.loads(proc.stdout)
    assert devices["CPU"]["kind"] == "device"
    assert "NumPy" in devices["NUMPY"]["properties"]["FULL_DEVICE_NAME"]
    assert {"HETERO", "MULTI", "AUTO", "BATCH"} <= {
        name for name, entry in devices.items() if entry["kind"] == "virtual"}


def test_benchmark_default_model_async_with_json(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    proc = aioinfer("benchmark", "-niter", "5", "--json", str(report_path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    assert report["model"] == "cnn" and report["device"] == "CPU" and report["api"] == "async"
    assert report["input_shapes"] == {"input": [1, 3, 224, 224]}
    assert report["iterations"] == 5
    lat = report["latency_ms"]
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["max"]
    assert report["throughput_fps"] > 0 and report["compile_ms"] > 0
    assert report["first_inference_ms"] > 0 and report["peak_memory_mib"] > 10
    assert "Throughput:" in proc.stdout and "First inference:" in proc.stdout
    assert "100%" in proc.stderr  # the progress bar ran to the end


def test_benchmark_sync_api_runs_for_the_given_time(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    proc = aioinfer("benchmark", "-m", SMALL_CNN, "--api", "sync", "-t", "1",
                    "--json", str(report_path), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    assert report["api"] == "sync" and report["hint"] == "latency" and report["nireq"] == 1
    assert 1.0 <= report["duration_s"] < 5.0
    assert report["iterations"] >= 1
    assert proc.stderr == ""


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_benchmark_throughput_with_requests_and_shape(tmp_path: Path, loop: str) -> None:
    report_path = tmp_path / "report.json"
    proc = aioinfer("benchmark", "-m", "bert", "-shape", "[2,16]", "-hint", "throughput",
                    "-nstreams", "2", "-nireq", "3", "-niter", "6", "--loop", loop,
                    "--json", str(report_path))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    assert report["nireq"] == 3 and report["streams"] == 2 and report["loop"] == loop
    assert report["input_shapes"]["attention_mask"] == [2, 16]
    assert report["iterations"] == 6 and report["batch"] == 2


def test_benchmark_per_node_profile_on_template() -> None:
    proc = aioinfer("benchmark", "-m", "bert:seq=8", "-d", "TEMPLATE", "-niter", "2", "-pc",
                    "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "Total node time" in proc.stdout and "MatMul" in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("-m", "resnet9000"), "built-in models: bert"),
    (("-d", "NOPE"), "device 'NOPE' not found"),
    (("-m", "bert", "-shape", "input_ids[1,x]"), "dimensions must be integers"),
    (("-m", "cnn:widths=3"), "built-in model"),
])
def test_benchmark_bad_arguments_fail_clearly(args: tuple[str, ...], message: str) -> None:
    proc = aioinfer("benchmark", "-niter", "1", *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_prints_outputs_of_given_input(tmp_path: Path) -> None:
    x = np.random.default_rng(3).standard_normal((1, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = aioinfer("run", "-m", SMALL_CNN, "--input", f"input={tmp_path / 'x.npy'}")
    assert proc.returncode == 0, proc.stderr
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(models.cnn(image_size=64).SerializeToString())
    top5 = np.argsort(-session.run(None, {"input": x})[0][0])[:5].tolist()
    assert "probabilities: float32[1, 1000]" in proc.stdout
    assert f"top-5 of row 0: {top5}" in proc.stdout


def test_benchmark_model_file_with_dynamic_batch_needs_shape(tmp_path: Path) -> None:
    proto = models.mlp(batch="N", sizes=(32, 64, 10))
    del proto.metadata_props[:]  # a plain exported file: no example shapes recorded
    path = tmp_path / "mlp.onnx"
    path.write_bytes(proto.SerializeToString())
    proc = aioinfer("benchmark", "-m", str(path), "-niter", "3", "--no-progress")
    assert proc.returncode == 1
    assert "'input' has a dynamic shape" in proc.stderr and "-shape" in proc.stderr
    report_path = tmp_path / "report.json"
    proc = aioinfer("benchmark", "-m", str(path), "-niter", "3", "-shape", "input[4,32]",
                    "--json", str(report_path), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(report_path.read_text())
    assert report["input_shapes"] == {"input": [4, 32]} and report["batch"] == 4


def test_partition_draws_the_hetero_split_as_dot(tmp_path: Path) -> None:
    out = tmp_path / "cnn.dot"
    proc = aioinfer("partition", "-m", SMALL_CNN, "--affinity", "alternate:NUMPY,TEMPLATE",
                    "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    dot = out.read_text()
    assert dot.startswith("digraph") and 'label="#0 NUMPY"' in dot and 'label="#1 TEMPLATE"' in dot
    assert "subgraphs" in proc.stderr and "cut edges" in proc.stderr
    single = aioinfer("partition", "-m", SMALL_CNN)  # NUMPY runs every node: one subgraph
    assert single.returncode == 0 and "1 subgraphs, 0 cut edges" in single.stderr
    refused = aioinfer("partition", "-m", SMALL_CNN, "-d", "NUMPY")
    assert refused.returncode == 1 and "does not split" in refused.stderr
