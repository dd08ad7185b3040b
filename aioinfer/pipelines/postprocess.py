"""Postprocessing: model outputs -> :class:`~aioinfer.pipelines.FrameResult` (top-k
classification; detection boxes with non-maximum suppression)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..errors import AioInferError
from .frames import Detection, Frame, FrameResult


class Postprocess(Protocol):
    """Turns one frame's outputs into its result (runs on a worker thread)."""

    def __call__(self, frame: Frame, outputs: Sequence[np.ndarray],
                 latency: float) -> FrameResult: ...


class Classify:
    """Top-``k`` classes of a classifier's first output (``[1, classes]`` scores)."""

    def __init__(self, k: int = 5) -> None:
        if k < 1:
            raise ValueError(f"Classify: k must be >= 1, got {k}")
        self.k = k

    def __call__(self, frame: Frame, outputs: Sequence[np.ndarray],
                 latency: float) -> FrameResult:
        classes, scores = top_k(outputs[0], self.k)
        return FrameResult(frame.index, classes, scores, latency, frame.label)


def top_k(scores: np.ndarray, k: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The ``k`` best classes of a ``[1, classes]`` (or flat) score array, best first."""
    row = np.asarray(scores).reshape(-1)
    k = min(k, row.size)
    best = np.argpartition(-row, k - 1)[:k]
    best = best[np.argsort(-row[best], kind="stable")]
    return tuple(int(c) for c in best), tuple(float(row[c]) for c in best)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.5,
        score_threshold: float = 0.0, max_detections: int = 100) -> np.ndarray:
    """Greedy non-maximum suppression (as ONNX ``NonMaxSuppression`` with corner boxes):
    the indices of the kept ``[N, 4]`` boxes ``(x0, y0, x1, y1)``, best score first."""
    boxes = np.asarray(boxes, np.float64)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) != len(scores):
        raise AioInferError(f"nms: expected boxes [N, 4] and scores [N], got "
                            f"{list(boxes.shape)} and {list(scores.shape)}")
    x0, y0 = np.minimum(boxes[:, 0], boxes[:, 2]), np.minimum(boxes[:, 1], boxes[:, 3])
    x1, y1 = np.maximum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 1], boxes[:, 3])
    area = (x1 - x0) * (y1 - y0)
    order = np.argsort(-scores, kind="stable")
    order = order[scores[order] > score_threshold]
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        w = np.clip(np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]), 0, None)
        h = np.clip(np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(area[best] + area[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


class Detect:
    """Boxes of a detector whose outputs are ``boxes [1, N, 4]`` (corners, pixels of the
    model input) and ``scores [1, N, classes]``: per-class NMS, boxes scaled to the frame."""

    def __init__(self, input_size: tuple[int, int], iou_threshold: float = 0.5,
                 score_threshold: float = 0.25, max_detections: int = 100) -> None:
        self.input_size = input_size
        self.iou_threshold = iou_threshold
        self.score_threshold = score_threshold
        self.max_detections = max_detections

    def __call__(self, frame: Frame, outputs: Sequence[np.ndarray],
                 latency: float) -> FrameResult:
        boxes = np.asarray(outputs[0]).reshape(-1, 4)
        scores = np.asarray(outputs[1]).reshape(len(boxes), -1)
        height, width = frame.image.shape[:2]
        scale = np.array([width / self.input_size[1], height / self.input_size[0]] * 2)
        found: list[Detection] = []
        for cls in range(scores.shape[1]):
            for i in nms(boxes, scores[:, cls], self.iou_threshold, self.score_threshold,
                         self.max_detections):
                box = boxes[i] * scale
                found.append(Detection((float(box[0]), float(box[1]), float(box[2]),
                                        float(box[3])), cls, float(scores[i, cls])))
        found.sort(key=lambda d: -d.score)
        found = found[:self.max_detections]
        return FrameResult(frame.index, tuple(d.cls for d in found),
                           tuple(d.score for d in found), latency, frame.label, tuple(found))
