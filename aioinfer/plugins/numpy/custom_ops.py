"""Custom operations (:class:`aioinfer.Op`) as NUMPY kernels of one plugin instance."""

from __future__ import annotations

from typing import Any

from ...extensions import Op, call_evaluate
from .registry import Kernel, KernelSpec


def kernel_spec(cls: type[Op]) -> KernelSpec:
    """The kernel of ``cls`` for a plugin's :class:`~.registry.KernelRegistry` overlay.

    One ``cls()`` serves every node of the op; the compiler binds each node's attributes (and
    its output count) once, as for a built-in kernel.
    """
    op = cls()

    def kernel(*inputs: Any, n_outputs: int, **attributes: Any) -> Any:
        values = call_evaluate(op, inputs, attributes, n_outputs)
        return values if n_outputs != 1 else values[0]

    fn: Kernel = kernel
    return KernelSpec(cls.op_type, cls.domain, cls.since_version, fn, cls.foldable)
