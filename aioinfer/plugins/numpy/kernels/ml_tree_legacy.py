"""``ai.onnx.ml`` TreeEnsembleRegressor and TreeEnsembleClassifier (ml opsets 1 and 3).

The (tree id, node id) node lists are flattened into the :class:`Forest` of ``ml_tree``.
"""

from __future__ import annotations

import numpy as np

from ..registry import register
from .ml import ML, _memo
from .ml_linear import post_transform_scores
from .ml_tree import _OLD_MODES, Forest, _depth


def _pick(values, tensor) -> np.ndarray:
    return np.asarray(tensor if tensor is not None else values, np.float64).ravel()


def _forest_legacy(a: dict, prefix: str) -> Forest:
    tree = np.asarray(a["nodes_treeids"], np.int64)
    node = np.asarray(a["nodes_nodeids"], np.int64)
    n = tree.size
    width = int(node.max()) + 1
    keys = tree * width + node
    order = np.argsort(keys, kind="stable")

    def where(t: np.ndarray, i: np.ndarray) -> np.ndarray:
        return order[np.searchsorted(keys[order], t * width + i)]

    mode = np.array([_OLD_MODES[m] for m in a["nodes_modes"]], np.int64)
    leaf = mode < 0
    self_idx = np.arange(n)
    true_next = np.where(leaf, self_idx, where(tree, np.asarray(a["nodes_truenodeids"])))
    false_next = np.where(leaf, self_idx, where(tree, np.asarray(a["nodes_falsenodeids"])))
    roots = np.unique(tree, return_index=True)[1]
    e_node = where(np.asarray(a[f"{prefix}_treeids"], np.int64),
                   np.asarray(a[f"{prefix}_nodeids"], np.int64))
    e_order = np.argsort(e_node, kind="stable")
    count = np.bincount(e_node, minlength=n)
    missing = a.get("nodes_missing_value_tracks_true")
    return Forest(
        feature=np.asarray(a["nodes_featureids"], np.int64),
        split=_pick(a.get("nodes_values"), a.get("nodes_values_as_tensor")),
        mode=mode, true_next=true_next, false_next=false_next,
        missing_true=np.zeros(n, bool) if not missing else np.asarray(missing, bool),
        members=np.zeros((n, 0)), roots=roots, depth=_depth(true_next, false_next, roots),
        entry_start=np.cumsum(count) - count, entry_count=count,
        entry_target=np.asarray(a[f"{prefix}_ids"], np.int64)[e_order],
        entry_weight=_pick(a.get(f"{prefix}_weights"),
                           a.get(f"{prefix}_weights_as_tensor"))[e_order],
    )


def _floats(x: np.ndarray) -> np.ndarray:
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


@register("TreeEnsembleRegressor", since=1, domain=ML)
def tree_ensemble_regressor(x, *, aggregate_function="SUM", base_values=None,
                            base_values_as_tensor=None, n_targets=None, post_transform="NONE",
                            **attrs):
    forest = _memo((attrs["nodes_nodeids"], attrs["target_weights"]
                    if "target_weights" in attrs else attrs["target_weights_as_tensor"]),
                   lambda: _forest_legacy(attrs, "target"))
    n_out = n_targets or int(forest.entry_target.max()) + 1
    scores = forest.predict(_floats(x), n_out, aggregate_function)
    base = base_values_as_tensor if base_values_as_tensor is not None else base_values
    if base is not None and len(base):
        scores += np.asarray(base, np.float64).ravel()
    return post_transform_scores(scores.astype(np.float32), post_transform)


@register("TreeEnsembleClassifier", since=1, domain=ML)
def tree_ensemble_classifier(x, *, base_values=None, base_values_as_tensor=None,
                             classlabels_int64s=None, classlabels_strings=None,
                             post_transform="NONE", **attrs):
    """Returns ``(labels [N], scores [N, n_classes])``; labels from the raw scores."""
    forest = _memo((attrs["nodes_nodeids"], attrs["class_ids"]),
                   lambda: _forest_legacy(attrs, "class"))
    labels = classlabels_strings if classlabels_strings is not None else classlabels_int64s
    n_classes = len(labels)
    scores = forest.predict(_floats(x), n_classes, "SUM")
    base = base_values_as_tensor if base_values_as_tensor is not None else base_values
    if base is not None and len(base):
        scores += np.asarray(base, np.float64).ravel()
    if n_classes == 2:  # onnxruntime: thresholds the class-1 score instead of an argmax
        threshold = 0.5 if (forest.entry_weight >= 0).all() else 0.0
        best = (scores[:, 1] > threshold).astype(np.int64)
    else:
        best = np.argmax(scores, axis=1)
    out = post_transform_scores(scores, post_transform)
    table = np.asarray(labels, dtype=object if classlabels_strings is not None else np.int64)
    return table[best], out.astype(np.float32)
