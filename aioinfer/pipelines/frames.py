"""What flows through a pipeline: a decoded frame and the result computed for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` is ``H x W x 3`` uint8 RGB; ``captured`` the
    ``time.perf_counter()`` at which it was decoded; ``label`` a known class, if any."""

    index: int
    image: np.ndarray
    captured: float
    label: int | None = None


@dataclass(frozen=True)
class Detection:
    """One box in pixels of the frame, ``(x0, y0, x1, y1)``, with its class and score."""

    box: tuple[float, float, float, float]
    cls: int
    score: float


@dataclass(frozen=True)
class FrameResult:
    """The postprocessed result of one frame; ``latency`` is decode-to-result, in seconds."""

    index: int
    classes: tuple[int, ...]
    scores: tuple[float, ...]
    latency: float
    label: int | None = None
    detections: tuple[Detection, ...] = ()

    @property
    def correct(self) -> bool | None:
        """Whether the best class is the known label (``None`` without a label)."""
        if self.label is None or not self.classes:
            return None
        return self.classes[0] == self.label

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of :class:`~aioinfer.pipelines.JsonLinesSink`)."""
        out: dict[str, Any] = {"frame": self.index, "classes": list(self.classes),
                               "scores": [round(s, 6) for s in self.scores],
                               "latency_ms": round(self.latency * 1e3, 3)}
        if self.label is not None:
            out["label"] = self.label
        if self.detections:
            out["detections"] = [{"box": [round(v, 2) for v in d.box], "class": d.cls,
                                  "score": round(d.score, 6)} for d in self.detections]
        return out
