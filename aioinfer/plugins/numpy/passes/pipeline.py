"""The pass pipeline: the order the graph passes run in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import onnx

from .affine import fold_affine_into_conv, fuse_affine
from .bn_fold import fold_batchnorm
from .channel_shuffle import absorb_channel_shuffle, fuse_channel_shuffle
from .cleanup import remove_passthrough
from .concat_in_place import write_concat_in_place
from .fold import fold_constants
from .fuse import fuse_products
from .gelu import fuse_gelu
from .ir import Evaluator, GraphIR
from .layer_norm import fuse_layer_norm
from .masked_fill import fuse_masked_fill
from .pow import reduce_pow
from .shapes import fold_static_shapes, infer_static_shapes
from .sibling_convs import merge_sibling_convs
from .transpose import cancel_transposes
from .weight_layout import store_swapped_weights
from .winograd import ShapeOf, use_winograd

_SHAPE_ROUNDS = 32  # each round typically unlocks one more layer of a transformer


def optimize(
    nodes: Iterable[tuple[onnx.NodeProto, Mapping[str, int]]],
    constants: dict[str, Any],
    keep: Iterable[str],
    evaluate: Evaluator,
    *,
    fuse: bool = True,
    shape_of: ShapeOf | None = None,
    static_inputs: Sequence[onnx.ValueInfoProto] | None = None,
) -> GraphIR:
    """Run the passes over ``nodes`` (topologically ordered, each with its opsets).

    ``constants`` holds the initializers by name and receives folded values; ``keep`` names
    the values that must survive (graph outputs); ``shape_of`` gives a value's static shape
    (or ``None``) for the passes that depend on sizes. ``static_inputs`` (the graph inputs,
    when all of them have static shapes) turns on shape folding: inference and folding alternate
    until no Shape/Size node is left to fold. Returns the optimised :class:`GraphIR`.
    """
    ir = GraphIR.build(nodes, constants, keep)
    fold_constants(ir, evaluate)
    shapes: dict[str, tuple[int, ...]] = {}  # the last static inference of the folded graph
    if static_inputs is not None:
        for _ in range(_SHAPE_ROUNDS):
            if not any(n.op_type in ("Shape", "Size") for n in ir.nodes):
                break
            shapes = infer_static_shapes(ir, static_inputs)
            if not fold_static_shapes(ir, shapes, evaluate):
                break
            fold_constants(ir, evaluate)
    remove_passthrough(ir)
    cancel_transposes(ir)
    reduce_pow(ir)
    fuse_masked_fill(ir)
    if fuse:
        fuse_gelu(ir)
        fuse_layer_norm(ir)
        fuse_channel_shuffle(ir)
        fold_batchnorm(ir)
        fuse_products(ir)
        fuse_affine(ir, shape_of)
        fold_affine_into_conv(ir)
        merge_sibling_convs(ir)
        if shape_of is not None:
            use_winograd(ir, shape_of)
            store_swapped_weights(ir, lambda name: shapes.get(name) or shape_of(name))
        absorb_channel_shuffle(ir)
        if shape_of is not None:
            write_concat_in_place(ir, shape_of)
    return ir
