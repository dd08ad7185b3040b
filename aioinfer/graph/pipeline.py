"""The pass pipeline: the order the graph passes run in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import onnx

from .bn_fold import fold_batchnorm
from .cleanup import remove_passthrough
from .fold import fold_constants
from .fuse import fuse_products
from .ir import Evaluator, GraphIR
from .pow import reduce_pow
from .transpose import cancel_transposes
from .winograd import ShapeOf, use_winograd


def optimize(
    nodes: Iterable[tuple[onnx.NodeProto, Mapping[str, int]]],
    constants: dict[str, Any],
    keep: Iterable[str],
    evaluate: Evaluator,
    *,
    fuse: bool = True,
    shape_of: ShapeOf | None = None,
) -> GraphIR:
    """Run the passes over ``nodes`` (topologically ordered, each with its opsets).

    ``constants`` holds the initializers by name and receives folded values; ``keep`` names
    the values that must survive (graph outputs); ``shape_of`` gives a value's static shape
    (or ``None``) for the passes that depend on sizes. Returns the optimised :class:`GraphIR`.
    """
    ir = GraphIR.build(nodes, constants, keep)
    fold_constants(ir, evaluate)
    remove_passthrough(ir)
    cancel_transposes(ir)
    reduce_pow(ir)
    if fuse:
        fold_batchnorm(ir)
        fuse_products(ir)
        if shape_of is not None:
            use_winograd(ir, shape_of)
    return ir
