"""What this process's BLAS does with equal rows (for tests whose expected outputs need it)."""

from __future__ import annotations

import numpy as np


def rows_consistent() -> bool:
    """Whether this BLAS gives equal rows of a product for equal rows of its left operand.

    The light squeezenet's 1000 channels are alike and its logits ~9.5e9, so the runner's
    expected output (a uniform softmax) holds only where all 1000 logits come out bit-equal.
    OpenBLAS 0.3.31 on an AMD EPYC (its Haswell kernels) rounds rows 6-11 of every 12 apart
    from rows 0-5; the logits then differ by an ulp (1024), which the softmax turns into 0 and
    1: any engine on that BLAS misses the expected output (onnxruntime's MLAS does not round
    rows apart)."""
    rng = np.random.default_rng(0)
    a = np.repeat(rng.standard_normal((1, 64)).astype(np.float32), 24, axis=0)
    product = a @ rng.standard_normal((64, 40)).astype(np.float32)
    return bool((product == product[0]).all())
