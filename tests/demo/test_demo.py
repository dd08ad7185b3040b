"""The embedded demo: the committed model, its accuracy, and ``aioinfer demo`` end to end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

import aioinfer
from aioinfer.demo import held_out_digits, model_path, prepared_model
from aioinfer.demo.render import FRAME_SIZE, sample_frames

ROOT = Path(__file__).resolve().parents[2]


def aioinfer_cli(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "aioinfer.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_committed_model_is_small_and_says_how_it_was_made() -> None:
    path = model_path()
    assert path.stat().st_size < 300_000
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert float(meta["aioinfer.demo.held_out_accuracy"]) >= 0.95
    assert "load_digits" in json.loads(meta["aioinfer.demo.training"])["data"]
    assert (path.parent / "MODEL.md").read_text().count("held-out") >= 1


def test_held_out_digits_are_the_split_never_trained_on() -> None:
    pytest.importorskip("sklearn")
    from aioinfer.demo.train import split_digits

    images, labels = held_out_digits()
    assert images.shape == (360, 8, 8) and images.dtype == np.uint8 and labels.shape == (360,)
    x_train, _, x_test, y_test = split_digits(0)
    np.testing.assert_array_equal(x_test, images)
    np.testing.assert_array_equal(y_test, labels)
    assert len(x_train) + len(x_test) == 1797 and sorted(set(labels.tolist())) == list(range(10))


def test_prepared_model_classifies_rendered_held_out_frames() -> None:
    images, labels = held_out_digits()
    frames = list(sample_frames(images, labels, 120, hold=1, seed=7))
    compiled = aioinfer.Core().compile_model(prepared_model(), "CPU")
    batch = np.stack([image for image, _ in frames])  # uint8 [N, 128, 128, 3]: any N
    assert batch.shape[1:] == (FRAME_SIZE, FRAME_SIZE, 3)
    predicted = compiled(batch)[0].argmax(1)
    accuracy = float((predicted == np.array([label for _, label in frames])).mean())
    assert accuracy >= 0.95, accuracy


def test_demo_command_runs_end_to_end(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    proc = aioinfer_cli("demo", "--frames", "48", "--out", str(tmp_path), "--json")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["frames"] == report["pulled"] == 48 and report["dropped"] == 0
    assert report["mode"] == "lossless" and report["labelled"] == 48
    assert report["accuracy"] >= 0.85 and report["fps"] > 0
    assert 0 < report["latency_ms"]["median"] <= report["latency_ms"]["p99"]
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(48))
    with av.open(str(tmp_path / "annotated.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 48 and decoded[0].shape == (FRAME_SIZE, FRAME_SIZE, 3)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_stops_cleanly_and_leaves_playable_files(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    proc = aioinfer_cli("demo", "--frames", "1500", "--requests", "2", "--out", str(tmp_path),
                        "--json")
    annotated = tmp_path / "annotated.mp4"
    deadline = time.monotonic() + 120
    while not annotated.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, "the demo ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["interrupted"] and 0 < report["frames"] < 1500
    assert report["pulled"] == report["frames"] + report["abandoned"]
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(report["frames"]))
    with av.open(str(annotated)) as container:
        assert sum(1 for _ in container.decode(video=0)) == report["frames"]


def test_pipeline_command_runs_a_video_file_batched(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    from aioinfer.demo import write_sample_video

    labels = write_sample_video(tmp_path / "in.mp4", 30, seed=2)
    proc = aioinfer_cli("pipeline", "-i", str(tmp_path / "in.mp4"), "-o",
                        str(tmp_path / "out.mp4"), "--jsonl", str(tmp_path / "out.jsonl"),
                        "--batch", "4", "--top-k", "3", "--json")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    report = json.loads(out)
    assert report["frames"] == report["pulled"] == 30 and report["dropped"] == 0
    assert report["mode"] == "lossless" and report["max_in_flight"] >= 4  # 4 frames a request
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(30))
    assert all(len(line["classes"]) == 3 for line in lines)
    right = sum(line["classes"][0] == label for line, label in zip(lines, labels, strict=True))
    assert right >= 25  # the demo's model on the demo's frames, without labels given
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 30
