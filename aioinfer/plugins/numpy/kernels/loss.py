"""Loss functions: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss."""

from __future__ import annotations

import numpy as np

from ..registry import register


def _nll(
    log_prob: np.ndarray, target: np.ndarray, weight: np.ndarray | None,
    reduction: str, ignore_index: int | None,
) -> np.ndarray:
    """``-log_prob[n, target[n, d...], d...]`` weighted, with ignored targets contributing 0.

    ``mean`` divides by the total weight of the non-ignored targets.
    """
    dtype = log_prob.dtype
    ignored = None if ignore_index is None else target == ignore_index
    safe = target if ignored is None else np.where(ignored, 0, target)
    picked = np.take_along_axis(log_prob, np.expand_dims(safe, 1), axis=1)[:, 0]
    w = None if weight is None else weight[safe].astype(dtype, copy=False)
    if ignored is not None:
        keep = ~ignored
        w = keep.astype(dtype) if w is None else np.where(keep, w, dtype.type(0))
    loss = np.negative(picked) if w is None else np.negative(picked) * w
    if reduction == "none":
        return loss
    total = np.sum(loss, dtype=dtype)
    if reduction == "sum":
        return np.asarray(total)
    if reduction != "mean":
        raise ValueError(f"unknown reduction {reduction!r}")
    denom = loss.size if w is None else np.sum(w, dtype=dtype)
    return np.asarray(total / denom).astype(dtype)


@register("NegativeLogLikelihoodLoss", since=12)
def negative_log_likelihood_loss(input, target, weight=None, *, reduction="mean",
                                 ignore_index=None):
    return _nll(input, target, weight, reduction, ignore_index)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@register("SoftmaxCrossEntropyLoss", since=12)
def softmax_cross_entropy_loss(scores, labels, weights=None, *, reduction="mean",
                               ignore_index=None, n_outputs=1):
    log_prob = _log_softmax(scores, 1)
    loss = _nll(log_prob, labels, weights, reduction, ignore_index)
    return (loss, log_prob) if n_outputs > 1 else loss
