"""Live statistics of a running pipeline (read them while it runs, or after)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .frames import FrameResult


@dataclass
class PipelineStats:
    """Counters of one run. ``pulled``: frames taken from the source into the model;
    ``delivered``: results handed to the sinks; ``dropped``: frames a live source replaced
    before the model could take them; ``abandoned``: frames in flight when the run was
    stopped (their inferences were cancelled); ``interrupted``: the run was cancelled."""

    mode: str = "lossless"
    pulled: int = 0
    delivered: int = 0
    dropped: int = 0
    abandoned: int = 0
    labelled: int = 0
    correct: int = 0
    max_in_flight: int = 0
    interrupted: bool = False
    started: float = field(default_factory=time.perf_counter)
    finished: float | None = None
    latencies: list[float] = field(default_factory=list)
    delivered_at: list[float] = field(default_factory=list)

    def record(self, result: FrameResult) -> None:
        """Count one delivered result."""
        self.delivered += 1
        self.latencies.append(result.latency)
        self.delivered_at.append(time.perf_counter() - self.started)
        if result.correct is not None:
            self.labelled += 1
            self.correct += int(result.correct)

    @property
    def elapsed(self) -> float:
        """Seconds from the start to the end (or to now, while running)."""
        end = self.finished if self.finished is not None else time.perf_counter()
        return end - self.started

    @property
    def fps(self) -> float:
        """Delivered frames per second."""
        return self.delivered / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def accuracy(self) -> float | None:
        """Share of labelled frames whose best class is the label."""
        return self.correct / self.labelled if self.labelled else None

    def latency_ms(self) -> dict[str, float]:
        """Latency percentiles (median, p90, p99, max) in milliseconds."""
        if not self.latencies:
            return {"median": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
        lat = np.asarray(self.latencies) * 1e3
        return {"median": float(np.median(lat)), "p90": float(np.percentile(lat, 90)),
                "p99": float(np.percentile(lat, 99)), "max": float(lat.max())}

    def as_dict(self) -> dict[str, Any]:
        """The counters and derived numbers as a JSON-ready dict."""
        return {"mode": self.mode, "frames": self.delivered, "pulled": self.pulled,
                "dropped": self.dropped, "abandoned": self.abandoned,
                "interrupted": self.interrupted, "seconds": round(self.elapsed, 4),
                "fps": round(self.fps, 2), "latency_ms": {
                    k: round(v, 3) for k, v in self.latency_ms().items()},
                "max_in_flight": self.max_in_flight, "labelled": self.labelled,
                "accuracy": None if self.accuracy is None else round(self.accuracy, 4)}

    def summary(self) -> str:
        """One line for people."""
        lat = self.latency_ms()
        text = (f"{self.delivered} frames in {self.elapsed:.2f} s: {self.fps:.1f} fps; latency "
                f"median {lat['median']:.1f} ms, p90 {lat['p90']:.1f} ms, p99 "
                f"{lat['p99']:.1f} ms; {self.dropped} dropped")
        if self.accuracy is not None:
            text += f"; accuracy {self.accuracy:.1%} ({self.correct}/{self.labelled})"
        if self.interrupted:
            text += f"; interrupted, {self.abandoned} in flight abandoned"
        return text
