"""Postprocessing and drawing: top-k, NMS against onnxruntime's NonMaxSuppression, boxes."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from aioinfer.errors import AioInferError
from aioinfer.pipelines import Frame, FrameResult, nms
from aioinfer.pipelines.annotate import GREEN, RED, annotate
from aioinfer.pipelines.postprocess import Detect, top_k


def test_top_k_best_first() -> None:
    classes, scores = top_k(np.array([[0.1, 0.5, 0.2, 0.7]]), 3)
    assert classes == (3, 1, 2) and scores == pytest.approx((0.7, 0.5, 0.2))


def _ort_nms(boxes: np.ndarray, scores: np.ndarray, iou: float, threshold: float) -> list[int]:
    ort = pytest.importorskip("onnxruntime")
    node = helper.make_node("NonMaxSuppression", ["b", "s", "m", "i", "t"], ["o"])
    graph = helper.make_graph([node], "nms", [
        helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, None, 4]),
        helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 1, None])],
        [helper.make_tensor_value_info("o", TensorProto.INT64, [None, 3])], [
        helper.make_tensor("m", TensorProto.INT64, [1], [100]),
        helper.make_tensor("i", TensorProto.FLOAT, [1], [iou]),
        helper.make_tensor("t", TensorProto.FLOAT, [1], [threshold])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"b": boxes[None, :, [1, 0, 3, 2]].astype(np.float32),
                             "s": scores[None, None].astype(np.float32)})[0]
    return [int(i) for i in out[:, 2]]


@pytest.mark.parametrize("seed", range(5))
def test_nms_matches_onnxruntime(seed: int) -> None:
    rng = np.random.default_rng(seed)
    corner = rng.uniform(0, 80, (40, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(5, 40, (40, 2))], axis=1)
    scores = rng.uniform(0, 1, 40)
    assert nms(boxes, scores, 0.4, 0.2).tolist() == _ort_nms(boxes, scores, 0.4, 0.2)


def test_nms_refuses_bad_shapes() -> None:
    with pytest.raises(AioInferError, match=r"boxes \[N, 4\]"):
        nms(np.zeros((3, 5)), np.zeros(3))


def test_detect_scales_boxes_to_the_frame_and_suppresses_per_class() -> None:
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]]], np.float32)
    scores = np.array([[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7]]], np.float32)
    frame = Frame(0, np.zeros((64, 128, 3), np.uint8), 0.0)
    result = Detect((32, 32))(frame, [boxes, scores], 0.01)
    assert [d.cls for d in result.detections] == [0, 1]
    assert result.detections[0].box == (0.0, 0.0, 40.0, 20.0)


def test_annotate_draws_banner_and_verdict_border() -> None:
    image = np.full((128, 128, 3), 100, np.uint8)
    right = annotate(image, FrameResult(0, (7,), (0.9,), 0.0, label=7))
    wrong = annotate(image, FrameResult(0, (1,), (0.9,), 0.0, label=7))
    assert tuple(right[-1, 64]) == GREEN and tuple(wrong[-1, 64]) == RED
    assert (right[:14] == 255).any() and (image == 100).all()  # text drawn; input untouched
