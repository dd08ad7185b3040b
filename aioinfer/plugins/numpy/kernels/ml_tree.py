"""``ai.onnx.ml`` tree ensembles: TreeEnsemble (ml opset 5), TreeEnsembleRegressor/Classifier.

All trees are flattened into one node table where leaves point to themselves. Prediction walks
every (sample, tree) pair one level per step (a loop over the depth of the deepest tree), then
scatters the reached leaves' weights into ``[N, n_targets]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import register
from .ml import ML, _memo
from .ml_linear import post_transform_scores

LEQ, LT, GTE, GT, EQ, NEQ, MEMBER = range(7)
_OLD_MODES = {"BRANCH_LEQ": LEQ, "BRANCH_LT": LT, "BRANCH_GTE": GTE, "BRANCH_GT": GT,
              "BRANCH_EQ": EQ, "BRANCH_NEQ": NEQ, "LEAF": -1}
_TRANSFORMS = ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"]


@dataclass
class Forest:
    """Flattened trees: node arrays (leaves included) and the leaves' (target, weight) pairs."""

    feature: np.ndarray
    split: np.ndarray
    mode: np.ndarray
    true_next: np.ndarray
    false_next: np.ndarray
    missing_true: np.ndarray
    members: np.ndarray  # [n_nodes, k] set members of MEMBER nodes, NaN-padded
    roots: np.ndarray
    depth: int
    entry_start: np.ndarray  # per node: first of its (target, weight) entries
    entry_count: np.ndarray  # per node: how many entries (0 for inner nodes)
    entry_target: np.ndarray
    entry_weight: np.ndarray

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The leaf index each (sample, tree) reaches: ``[N, n_trees]``."""
        cur = np.broadcast_to(self.roots, (x.shape[0], self.roots.size)).copy()
        rows = np.arange(x.shape[0])[:, None]
        for _ in range(self.depth):
            v = x[rows, self.feature[cur]]
            s = self.split[cur]
            mode = self.mode[cur]
            cond = np.select(
                [mode == LEQ, mode == LT, mode == GTE, mode == GT, mode == EQ, mode == NEQ],
                [v <= s, v < s, v >= s, v > s, v == s, v != s], default=False)
            if self.members.shape[1]:
                is_member = (self.members[cur] == v[..., None]).any(axis=-1)
                cond |= (mode == MEMBER) & is_member
            cond |= self.missing_true[cur] & np.isnan(v)
            cur = np.where(cond, self.true_next[cur], self.false_next[cur])
        return cur

    def predict(self, x: np.ndarray, n_targets: int, aggregate: str) -> np.ndarray:
        leaves = self.leaves(x)
        n, n_trees = leaves.shape
        reached = leaves.ravel()
        rows = np.repeat(np.arange(n), n_trees)
        count = self.entry_count[reached]
        entry = self.entry_start[reached]
        if not (count == 1).all():  # expand each reached leaf into its entries
            ends = np.cumsum(count)
            rows = np.repeat(rows, count)
            entry = np.repeat(entry, count) + np.arange(ends[-1] if ends.size else 0) \
                - np.repeat(ends - count, count)
        flat = rows * n_targets + self.entry_target[entry]
        w = self.entry_weight[entry]
        if aggregate in ("SUM", "AVERAGE"):
            out = np.bincount(flat, weights=w, minlength=n * n_targets)
            if aggregate == "AVERAGE":
                out /= n_trees
        elif aggregate in ("MIN", "MAX"):
            info = np.finfo(x.dtype)
            out = np.full(n * n_targets, info.max if aggregate == "MIN" else info.min,
                          dtype=np.float64)
            (np.minimum if aggregate == "MIN" else np.maximum).at(out, flat, w)
        else:
            raise ValueError(f"unknown aggregate_function {aggregate!r}")
        return out.reshape(n, n_targets)


def _depth(true_next: np.ndarray, false_next: np.ndarray, roots: np.ndarray) -> int:
    """Steps until every root-to-leaf walk has settled (a leaf maps to itself)."""
    frontier = np.unique(roots)
    for depth in range(true_next.size + 1):
        inner = frontier[(true_next[frontier] != frontier) | (false_next[frontier] != frontier)]
        if not inner.size:
            return depth
        frontier = np.unique(np.concatenate([true_next[inner], false_next[inner]]))
    raise ValueError("tree ensemble has a cycle")


def _members(mode: np.ndarray, values: np.ndarray | None) -> np.ndarray:
    """Splits the NaN-separated ``membership_values`` over the MEMBER nodes, in node order."""
    is_member = np.flatnonzero(mode == MEMBER)
    if values is None or not is_member.size:
        return np.zeros((mode.size, 0))
    groups = np.split(values, np.flatnonzero(np.isnan(values)))
    groups = [g[~np.isnan(g)] for g in groups][: is_member.size]
    out = np.full((mode.size, max(len(g) for g in groups)), np.nan)
    for node, g in zip(is_member, groups, strict=True):  # one row per set-membership node
        out[node, : len(g)] = g
    return out


def _forest_v5(a: dict) -> Forest:
    n_nodes = len(a["nodes_featureids"])
    n_leaves = len(a["leaf_targetids"])
    mode = np.concatenate([np.asarray(a["nodes_modes"], np.int64).ravel(),
                           np.full(n_leaves, -1)])
    leaf_ids = np.arange(n_leaves) + n_nodes
    t_ids = np.asarray(a["nodes_truenodeids"]) + np.asarray(a["nodes_trueleafs"]) * n_nodes
    f_ids = np.asarray(a["nodes_falsenodeids"]) + np.asarray(a["nodes_falseleafs"]) * n_nodes
    true_next = np.concatenate([t_ids, leaf_ids])
    false_next = np.concatenate([f_ids, leaf_ids])
    roots = np.asarray(a["tree_roots"], np.int64)
    degenerate = (np.asarray(a["nodes_trueleafs"])[roots].astype(bool)
                  & np.asarray(a["nodes_falseleafs"])[roots].astype(bool)
                  & (t_ids[roots] == f_ids[roots]))
    roots = np.where(degenerate, t_ids[roots], roots)
    missing = a.get("nodes_missing_value_tracks_true")
    missing = np.zeros(n_nodes, bool) if missing is None else np.asarray(missing, bool)
    membership = a.get("membership_values")
    return Forest(
        feature=np.concatenate([np.asarray(a["nodes_featureids"], np.int64),
                                np.zeros(n_leaves, np.int64)]),
        split=np.concatenate([np.asarray(a["nodes_splits"], np.float64).ravel(),
                              np.zeros(n_leaves)]),
        mode=mode, true_next=true_next, false_next=false_next,
        missing_true=np.concatenate([missing, np.zeros(n_leaves, bool)]),
        members=_members(mode, None if membership is None else np.asarray(membership).ravel()),
        roots=roots, depth=_depth(true_next, false_next, roots),
        entry_start=np.concatenate([np.zeros(n_nodes, np.int64), np.arange(n_leaves)]),
        entry_count=np.concatenate([np.zeros(n_nodes, np.int64), np.ones(n_leaves, np.int64)]),
        entry_target=np.asarray(a["leaf_targetids"], np.int64),
        entry_weight=np.asarray(a["leaf_weights"], np.float64).ravel(),
    )


@register("TreeEnsemble", since=5, domain=ML)
def tree_ensemble(
    x, *, nodes_splits, nodes_featureids, nodes_modes, nodes_truenodeids, nodes_falsenodeids,
    nodes_trueleafs, nodes_falseleafs, leaf_targetids, leaf_weights, tree_roots,
    post_transform=0, aggregate_function=1, nodes_hitrates=None,
    nodes_missing_value_tracks_true=None, membership_values=None, n_targets=None,
):
    attrs = dict(locals())
    del attrs["x"]
    forest = _memo((nodes_splits, leaf_weights, tree_roots, nodes_modes),
                   lambda: _forest_v5(attrs))
    agg = ["AVERAGE", "SUM", "MIN", "MAX"][aggregate_function]
    n_out = n_targets if n_targets is not None else int(forest.entry_target.max()) + 1
    scores = forest.predict(x, n_out, agg).astype(x.dtype)
    return post_transform_scores(scores, _TRANSFORMS[post_transform])
