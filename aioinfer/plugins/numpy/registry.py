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

``@register`` fills the built-in table, shared by every NUMPY plugin. Each plugin instance
holds a :class:`KernelRegistry`: the built-ins plus an overlay of its own (the custom
operations its :class:`~aioinfer.Core` added with ``add_extension``), so two Cores in one
process never see each other's extensions.
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


class KernelRegistry:
    """The built-in kernels plus an overlay of one plugin instance's own.

    An overlay kernel of a (domain, op_type) takes precedence over a built-in one of the same
    version or older; the overlay is per instance, the built-ins are shared.
    """

    def __init__(self) -> None:
        self._overlay: dict[tuple[str, str], list[KernelSpec]] = {}

    def add(self, spec: KernelSpec) -> None:
        """Add (or replace, for the same ``since``) one kernel version to the overlay."""
        domain = "" if spec.domain == "ai.onnx" else spec.domain
        specs = [s for s in self._overlay.get((domain, spec.op_type), ()) if s.since != spec.since]
        specs.append(spec)
        specs.sort(key=lambda s: s.since)
        self._overlay[(domain, spec.op_type)] = specs

    def lookup(self, op_type: str, opset: int, domain: str = "") -> KernelSpec | None:
        """The newest kernel of ``op_type`` at or below ``opset``: the overlay's, else a
        built-in one (see :func:`lookup`)."""
        if domain == "ai.onnx":
            domain = ""
        best = None
        for spec in self._overlay.get((domain, op_type), ()):
            if spec.since <= opset:
                best = spec
        builtin = lookup(op_type, opset, domain)
        if best is None or (builtin is not None and builtin.since > best.since):
            return builtin
        return best

    def overrides(self, op_type: str, domain: str) -> bool:
        """Whether this instance has a kernel of its own for (domain, op_type): it then wins
        over a model-local function of that name (a custom op's decomposition)."""
        return (domain, op_type) in self._overlay

    def overlay(self) -> dict[tuple[str, str], list[int]]:
        """The (domain, op_type) of this instance's own kernels, with their versions."""
        return {k: [s.since for s in v] for k, v in self._overlay.items()}


BUILTINS = KernelRegistry()
"""The built-in kernels alone (what ``compile_graph`` uses unless given a registry)."""
