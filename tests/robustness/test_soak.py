"""``benchmarks/soak.py`` as a user runs it: every tagged result delivered exactly once to its
caller, nothing lost, threads back to where they were after warm-up. CI runs a few thousand
requests per device; ``-m slow`` runs the 100,000 with the memory bound."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

SOAK = pathlib.Path(__file__).parents[2] / "benchmarks" / "soak.py"


def _soak(tmp_path: pathlib.Path, *args: str, timeout: float = 300) -> dict[str, Any]:
    out = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, str(SOAK), *args, "--json", str(out)],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report: dict[str, Any] = json.loads(out.read_text())
    assert report["errors"] == report["lost"] == report["misdelivered"] == 0, report
    assert report["duplicates"] == 0 and report["served"] == report["requests"]
    assert report["threads_end"] <= report["threads_warm"]
    return report


@pytest.mark.parametrize(("device", "requests"), [
    ("NUMPY", 6000), ("HETERO:NUMPY,TEMPLATE", 1500), ("BATCH:NUMPY(8)", 3000)])
def test_soak_from_256_tasks(tmp_path: pathlib.Path, device: str, requests: int) -> None:
    report = _soak(tmp_path, "--device", device, "--requests", str(requests),
                   "--every", str(requests // 3))
    assert len(report["samples"]) >= 3


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("device", ["NUMPY", "HETERO:NUMPY,TEMPLATE", "BATCH:NUMPY(8)"])
def test_soak_100k_with_flat_memory(tmp_path: pathlib.Path, device: str) -> None:
    report = _soak(tmp_path, "--device", device, "--requests", "100000", timeout=3000)
    assert report["rss_growth_from"] == 10_000 and report["rss_growth_mb"] < 20, report
