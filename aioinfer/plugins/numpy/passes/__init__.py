"""NUMPY's passes over the ONNX graph before it is compiled: folding, clean-up and fusion.

Each pass is a small module with one job; :func:`optimize` runs them in order over a
:class:`~.ir.GraphIR` (a list of nodes plus the constant values known at compile time). Fused
nodes live in the private ``aioinfer`` domain (:data:`FUSED_DOMAIN`), which only NUMPY's
kernels implement.
"""

from __future__ import annotations

from .ir import FUSED_DOMAIN, Evaluator, GraphIR
from .pipeline import optimize

__all__ = ["FUSED_DOMAIN", "Evaluator", "GraphIR", "optimize"]
