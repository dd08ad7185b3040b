"""Detection ops: NonMaxSuppression and RoiAlign."""

from __future__ import annotations

import numpy as np

from ..registry import register


def _corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """Boxes as (y1, x1, y2, x2) with y1 <= y2 and x1 <= x2, in float64."""
    b = boxes.astype(np.float64)
    if center_point_box:
        xc, yc, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)
    y1, y2 = np.minimum(b[..., 0], b[..., 2]), np.maximum(b[..., 0], b[..., 2])
    x1, x2 = np.minimum(b[..., 1], b[..., 3]), np.maximum(b[..., 1], b[..., 3])
    return np.stack([y1, x1, y2, x2], axis=-1)


def _iou_row(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one box against many (0 where any area is empty)."""
    ih = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0])
    iw = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1])
    inter = np.where((ih > 0) & (iw > 0), ih * iw, 0.0)
    a1 = (box[2] - box[0]) * (box[3] - box[1])
    a2 = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = a1 + a2 - inter
    ok = (a1 > 0) & (a2 > 0) & (union > 0)
    return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


def _nms_class(boxes: np.ndarray, scores: np.ndarray, limit: int, iou: float,
               score_threshold: float | None) -> list[int]:
    """Greedy NMS of one (batch, class): indices in selection order."""
    order = np.argsort(-scores, kind="stable")
    if score_threshold is not None:
        order = order[scores[order] > score_threshold]
    cand = boxes[order]
    alive = np.ones(len(order), bool)
    picked: list[int] = []
    for k in range(len(order)):  # one pass per surviving box, at most `limit` picks
        if len(picked) >= limit:
            break
        if not alive[k]:
            continue
        picked.append(int(order[k]))
        rest = slice(k + 1, None)
        alive[rest] &= ~(_iou_row(cand[k], cand[rest]) > iou)
    return picked


@register("NonMaxSuppression", since=10)
def non_max_suppression(
    boxes, scores, max_output_boxes_per_class=None, iou_threshold=None, score_threshold=None,
    *, center_point_box=0,
):
    limit = 0 if max_output_boxes_per_class is None or np.size(max_output_boxes_per_class) == 0 \
        else int(np.asarray(max_output_boxes_per_class).reshape(-1)[0])
    iou = 0.0 if iou_threshold is None or np.size(iou_threshold) == 0 \
        else float(np.asarray(iou_threshold).reshape(-1)[0])
    thr = None if score_threshold is None or np.size(score_threshold) == 0 \
        else float(np.asarray(score_threshold).reshape(-1)[0])
    scores = np.asarray(scores)
    corners = _corners(np.asarray(boxes), center_point_box)
    rows: list[tuple[int, int, int]] = []
    if limit > 0:
        for b in range(scores.shape[0]):
            for c in range(scores.shape[1]):
                picked = _nms_class(corners[b], scores[b, c], limit, iou, thr)
                rows.extend((b, c, i) for i in picked)
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _axis_samples(start: float, size: float, pooled: int, grid: int, limit: int):
    """Bilinear sample positions of one axis: low/high indices, weights, validity."""
    bin_size = size / pooled
    pos = start + np.arange(pooled)[:, None] * bin_size + (np.arange(grid) + 0.5) * (
        bin_size / grid)
    pos = pos.ravel()
    valid = (pos >= -1.0) & (pos <= limit)
    pos = np.maximum(pos, 0.0)
    low = np.floor(pos).astype(np.intp)
    edge = low >= limit - 1
    low = np.where(edge, limit - 1, low)
    high = np.where(edge, limit - 1, low + 1)
    pos = np.where(edge, low, pos)
    frac = pos - low
    return low, high, np.where(valid, 1 - frac, 0.0), np.where(valid, frac, 0.0)


def _roi_one(feat: np.ndarray, roi: np.ndarray, ph: int, pw: int, sampling: int,
             scale: float, half_pixel: bool, mode: str) -> np.ndarray:
    """RoiAlign of one box over a (C, H, W) feature map -> (C, ph, pw)."""
    _, h, w = feat.shape
    off = 0.5 if half_pixel else 0.0
    x1, y1, x2, y2 = (float(v) * scale - off for v in roi)
    rw, rh = x2 - x1, y2 - y1
    if not half_pixel:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    gh = sampling if sampling > 0 else int(np.ceil(rh / ph))
    gw = sampling if sampling > 0 else int(np.ceil(rw / pw))
    count = max(gh * gw, 1)
    ylo, yhi, wyl, wyh = _axis_samples(y1, rh, ph, gh, h)
    xlo, xhi, wxl, wxh = _axis_samples(x1, rw, pw, gw, w)
    dt = feat.dtype
    if mode == "avg":  # separable: Ay @ F @ Ax^T, Ay[p, y] sums the row weights of bin p
        ay = np.zeros((ph * gh, h), dt)
        np.add.at(ay, (np.arange(ph * gh), ylo), wyl)
        np.add.at(ay, (np.arange(ph * gh), yhi), wyh)
        ax = np.zeros((pw * gw, w), dt)
        np.add.at(ax, (np.arange(pw * gw), xlo), wxl)
        np.add.at(ax, (np.arange(pw * gw), xhi), wxh)
        ay = ay.reshape(ph, gh, h).sum(1)
        ax = ax.reshape(pw, gw, w).sum(1)
        return (ay @ feat @ ax.T) / dt.type(count)
    best = None
    for yi, wy in ((ylo, wyl), (yhi, wyh)):
        for xi, wx in ((xlo, wxl), (xhi, wxh)):
            v = feat[:, yi[:, None], xi[None, :]] * (wy[:, None] * wx[None, :]).astype(dt)
            best = v if best is None else np.maximum(best, v)
    assert best is not None
    return best.reshape(-1, ph, gh, pw, gw).max(axis=(2, 4))


def _roi_align(x, rois, batch_indices, ctm: str, mode: str, oh: int, ow: int,
               sampling: int, scale: float) -> np.ndarray:
    x, rois = np.asarray(x), np.asarray(rois)
    idx = np.asarray(batch_indices).astype(np.intp).reshape(-1)
    out = np.empty((rois.shape[0], x.shape[1], oh, ow), x.dtype)
    for n in range(rois.shape[0]):  # loop over boxes; each box is vectorised
        out[n] = _roi_one(x[idx[n]], rois[n], oh, ow, int(sampling), float(scale),
                          ctm == "half_pixel", mode)
    return out


@register("RoiAlign", since=10)
def roi_align_10(x, rois, batch_indices, *, mode="avg", output_height=1, output_width=1,
                 sampling_ratio=0, spatial_scale=1.0):
    return _roi_align(x, rois, batch_indices, "output_half_pixel", mode, output_height,
                      output_width, sampling_ratio, spatial_scale)


@register("RoiAlign", since=16)
def roi_align_16(x, rois, batch_indices, *, coordinate_transformation_mode="half_pixel",
                 mode="avg", output_height=1, output_width=1, sampling_ratio=0,
                 spatial_scale=1.0):
    return _roi_align(x, rois, batch_indices, coordinate_transformation_mode, mode,
                      output_height, output_width, sampling_ratio, spatial_scale)
