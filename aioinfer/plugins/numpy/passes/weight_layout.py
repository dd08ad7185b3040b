"""Store the weights of few-row products column-major, for the swapped GEMM.

With few rows (an MLP's batch, a decoder's tokens) and a large weight, OpenBLAS computes
``A (M, K) @ W (K, N)`` faster with the roles swapped, as ``W^T (N, K) @ A^T (K, M)`` into an
(N, M) buffer whose transpose is the result (measured on this project's 2-core host: 64 x
1024 x 4096 at 131 instead of 80 GFLOP/s on two threads). The swapped product wants ``W^T``
row-major, i.e. ``W`` column-major: this pass stores such weights in Fortran order (the same
values: every other reader is unaffected), and ``parallel.matmul`` swaps any few-row product
by a large column-major right operand. Gemm's ``transB`` weights already are.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ....graph.ir import attr
from .ir import FUSED_DOMAIN, GraphIR

#: The most rows (product of A's leading dims) a product may have to run swapped: at 128
#: rows the swapped form lost on some shapes (128 x 1024 x 256: 403 vs 355 us).
SWAP_MAX_ROWS = 64
#: The fewest weight elements for the swap: it pays where streaming the weight dominates
#: (the MLP's 1024-4096-4096-1000 layers: 26.0 -> 21.9 ms); on GPT-2-like 256 x 768 weights,
#: which stay in cache, one-thread runs were 5% slower swapped (the layout downstream).
SWAP_MIN_WEIGHT = 1 << 20

ShapeOf = Callable[[str], "tuple[int, ...] | None"]


def _swappable(ir: GraphIR, node, shape_of: ShapeOf) -> bool:
    if node.domain != FUSED_DOMAIN or node.op_type not in ("FusedMatMul", "FusedGemm"):
        return False
    if node.op_type == "FusedGemm" and (attr(node, "transA", 0) or attr(node, "transB", 0)):
        return False
    w = ir.constants.get(node.input[1])
    if (not isinstance(w, np.ndarray) or w.ndim != 2 or w.size < SWAP_MIN_WEIGHT
            or w.dtype not in (np.float32, np.float64)):
        return False
    shape = shape_of(node.input[0])
    return shape is not None and len(shape) >= 2 and math.prod(shape[:-1]) <= SWAP_MAX_ROWS


def store_swapped_weights(ir: GraphIR, shape_of: ShapeOf) -> int:
    """Make column-major every constant weight that only few-row products read; return how
    many were changed."""
    wanted: set[str] = set()
    refused: set[str] = set()
    for node in ir.nodes:
        if _swappable(ir, node, shape_of):
            wanted.add(node.input[1])
            refused.update((node.input[0], *node.input[2:]))  # read as data, not as B
        else:
            refused.update(node.input)
    done = 0
    for name in wanted - refused:
        ir.constants[name] = np.asfortranarray(ir.constants[name])
        done += 1
    return done
