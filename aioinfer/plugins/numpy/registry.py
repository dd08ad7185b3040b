"""The NUMPY kernel registry: op type and opset version -> kernel function.

A kernel is a plain function: input arrays positional (an absent optional input is ``None``),
attributes keyword-only with the ONNX spec's defaults. The compiler binds the attributes once
at compile time, so nothing is looked up per run. Two keyword names are reserved and filled in
by the compiler when a kernel declares them: ``n_outputs`` (how many outputs the node has) and
``opset`` (the model's opset for the op's domain). A kernel returns one value (an array, or a
list for sequence types) or, for a node with several outputs, a tuple with one value per output.

Kernels register with the opset version they start at; the compiler picks the newest
registration not newer than the model's opset::

    @register("Relu", since=6)
    def relu(x):
        return np.maximum(x, 0, dtype=x.dtype)
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Kernel = Callable[..., Any]


@dataclass(frozen=True)
class KernelSpec:
    """One registered kernel version."""

    op_type: str
    domain: str
    since: int
    fn: Kernel
    foldable: bool  # may run at compile time when all inputs are constants


_REGISTRY: dict[tuple[str, str], list[KernelSpec]] = {}
_loaded = False


def register(
    op_type: str, since: int = 1, *, domain: str = "", foldable: bool = True
) -> Callable[[Kernel], Kernel]:
    """Register ``fn`` as the kernel of ``op_type`` from opset ``since`` on."""

    def deco(fn: Kernel) -> Kernel:
        specs = _REGISTRY.setdefault((domain, op_type), [])
        specs.append(KernelSpec(op_type, domain, since, fn, foldable))
        specs.sort(key=lambda s: s.since)
        return fn

    return deco


def _load_kernels() -> None:
    global _loaded
    if _loaded:
        return
    from . import kernels

    for info in pkgutil.iter_modules(kernels.__path__):
        importlib.import_module(f"{kernels.__name__}.{info.name}")
    _loaded = True


def lookup(op_type: str, opset: int, domain: str = "") -> KernelSpec | None:
    """The newest kernel of ``op_type`` registered at or below ``opset``, or ``None``."""
    _load_kernels()
    if domain == "ai.onnx":
        domain = ""
    best = None
    for spec in _REGISTRY.get((domain, op_type), ()):
        if spec.since <= opset:
            best = spec
    return best


def supported_ops() -> dict[tuple[str, str], list[int]]:
    """Every registered (domain, op_type) with the opset versions it has kernels for."""
    _load_kernels()
    return {k: [s.since for s in v] for k, v in _REGISTRY.items()}
