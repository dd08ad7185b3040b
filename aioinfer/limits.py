"""A cap on the memory that one tensor of a model may take, checked before it is allocated.

A model (a 1e12-element ``ConstantOfShape``, a ``Tile`` by 1e9) or its inputs (a ``Range``
limit) can ask for more memory than the machine has; unchecked, NumPy either raises a bare
``MemoryError`` or, with Linux overcommit, the process is killed while the pages are touched.
Here the operations whose output size comes from the *values* of their inputs or from their
attributes have that size computed from those values first, and one over the cap raises
:class:`~aioinfer.errors.AllocationLimitError` naming the node. Initializers, including
external data, are checked when a model is read (:func:`aioinfer.model.load_model`).

The cap is ``AIOINFER_MAX_ALLOCATION_BYTES`` (bytes, suffixes K, M, G, T) when set, else half
of the machine's physical memory; :func:`set_max_allocation_bytes` and
:func:`allocation_limit` change it for the process.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import AllocationLimitError

__all__ = [
    "allocation_limit",
    "check_allocation",
    "check_node",
    "guard",
    "max_allocation_bytes",
    "set_max_allocation_bytes",
]

_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_override: int | None = None


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = text[-1:] if text[-1:] in _SUFFIXES else ""
    return int(float(text[: len(text) - len(unit)]) * _SUFFIXES[unit])


@functools.cache
def _default_cap() -> int:
    env = os.environ.get("AIOINFER_MAX_ALLOCATION_BYTES")
    if env:
        try:
            return _parse_bytes(env)
        except ValueError:
            pass  # a malformed setting falls back to the default rather than breaking import
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # not POSIX: a fixed 8 GiB
        return 8 << 30


def max_allocation_bytes() -> int:
    """The largest tensor, in bytes, that a model may make."""
    return _override if _override is not None else _default_cap()


def set_max_allocation_bytes(limit: int | None) -> None:
    """Set the cap for this process (``None``: back to the default)."""
    global _override
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ValueError(f"the allocation cap must be a positive int of bytes, got {limit!r}")
    _override = limit


@contextlib.contextmanager
def allocation_limit(limit: int) -> Iterator[None]:
    """The cap set to ``limit`` bytes inside the ``with`` block."""
    before = _override
    set_max_allocation_bytes(limit)
    try:
        yield
    finally:
        set_max_allocation_bytes(before)


def check_allocation(elements: int, itemsize: int, *, what: str, node: str | None = None,
                     device: str | None = None) -> None:
    """Raise :class:`AllocationLimitError` if ``elements`` of ``itemsize`` bytes are over the
    cap; ``what`` names the tensor in the message."""
    nbytes = int(elements) * int(itemsize)
    limit = max_allocation_bytes()
    if nbytes > limit:
        where = f"node {node!r}" + (f" on {device}" if device else "") + ": " if node else ""
        raise AllocationLimitError(
            f"{where}{what} would take {_human(nbytes)} ({int(elements)} elements), over the "
            f"allocation cap of {_human(limit)} (AIOINFER_MAX_ALLOCATION_BYTES)",
            node=node, device=device, nbytes=nbytes, limit=limit)


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError


# -- implied output sizes of the operations that allocate from values -------------------------
# Each returns (elements, itemsize) of the output the op would make, or None when it cannot
# tell (the kernel then runs and reports its own error for malformed inputs).
Implied = Callable[[Sequence[Any], Mapping[str, Any]], "tuple[int, int] | None"]


def _ints(value: Any) -> list[int] | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        return None
    return [int(v) for v in array.reshape(-1)]


def _floats(value: Any) -> list[float] | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype.kind not in "iuf" or array.size == 0:
        return None
    return [float(v) for v in array.reshape(-1)]


def _prod(dims: Iterable[int]) -> int:
    return math.prod(max(int(d), 0) for d in dims)


def _itemsize(x: Any, default: int = 4) -> int:
    return int(getattr(getattr(x, "dtype", None), "itemsize", default) or default)


def _constant_of_shape(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    shape = _ints(args[0]) if args else None
    return None if shape is None else (_prod(shape), _itemsize(attrs.get("value"), 4))


def _expand(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    shape = _ints(args[1]) if len(args) > 1 else None
    if shape is None or not hasattr(args[0], "shape"):
        return None
    dims = list(np.shape(args[0]))
    rank = max(len(dims), len(shape))
    dims = [1] * (rank - len(dims)) + dims
    shape = [1] * (rank - len(shape)) + shape
    return _prod(max(a, b) for a, b in zip(dims, shape, strict=True)), _itemsize(args[0])


def _tile(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    repeats = _ints(args[1]) if len(args) > 1 else None
    if repeats is None or not hasattr(args[0], "shape"):
        return None
    dims = list(np.shape(args[0]))
    rank = max(len(dims), len(repeats))  # a length mismatch is invalid ONNX, but np.tile
    dims = [1] * (rank - len(dims)) + dims  # pads the shorter one with ones and allocates
    repeats = [1] * (rank - len(repeats)) + repeats
    return _prod(d * r for d, r in zip(dims, repeats, strict=True)), _itemsize(args[0])


def _range(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    values = [_floats(a) for a in args[:3]]
    if len(values) < 3 or any(v is None or len(v) != 1 for v in values):
        return None
    (start,), (limit,), (delta,) = values  # type: ignore[misc]
    if delta == 0 or not all(map(math.isfinite, (start, limit, delta))):
        return None
    return max(math.ceil((limit - start) / delta), 0), _itemsize(args[0], 8)


def _one_hot(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    depth = _floats(args[1]) if len(args) > 1 else None
    if depth is None or len(depth) != 1 or not math.isfinite(depth[0]):
        return None
    values = args[2] if len(args) > 2 else None
    return int(np.size(args[0])) * max(int(depth[0]), 0), _itemsize(values, 4)


def _pad(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    pads = _ints(args[1]) if len(args) > 1 and args[1] is not None else _ints(attrs.get("pads"))
    if pads is None or not hasattr(args[0], "shape"):
        return None
    dims = list(np.shape(args[0]))
    axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else None
    axes = list(range(len(dims))) if axes is None else [a % max(len(dims), 1) for a in axes]
    if len(pads) != 2 * len(axes):
        return None
    for k, axis in enumerate(axes):
        if 0 <= axis < len(dims):
            dims[axis] += pads[k] + pads[k + len(axes)]
    return _prod(dims), _itemsize(args[0])


def _resize(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    if not hasattr(args[0], "shape"):
        return None
    dims = list(np.shape(args[0]))
    sizes = _ints(args[3]) if len(args) > 3 else None
    scales = _floats(args[2]) if len(args) > 2 else None
    if len(args) == 2:  # Upsample-9/Resize-10: (X, scales)
        scales = _floats(args[1])
    if scales is None and "scales" in attrs:  # Upsample-7
        scales = _floats(attrs["scales"])
    if sizes:
        return (_prod(sizes), _itemsize(args[0])) if len(sizes) == len(dims) else None
    if scales and len(scales) == len(dims) and all(map(math.isfinite, scales)):
        return _prod(int(d * s) for d, s in zip(dims, scales, strict=True)), _itemsize(args[0])
    return None


def _from_shape_attr(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    shape = _ints(attrs.get("shape"))
    return None if shape is None else (_prod(shape), 8)


def _gather(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    if len(args) < 2 or not hasattr(args[0], "shape"):
        return None
    dims = list(np.shape(args[0]))
    if not dims:
        return None
    axis = int(attrs.get("axis", 0)) % len(dims)
    rest = _prod(dims[:axis] + dims[axis + 1:])
    return rest * int(np.size(args[1])), _itemsize(args[0])


def _windowed(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    """Conv and pooling: the padded input an implementation may build, times the larger of
    the input and output channel counts (an upper bound of the output too)."""
    if not args or not hasattr(args[0], "shape") or np.ndim(args[0]) < 3:
        return None
    dims = list(np.shape(args[0]))
    pads = _ints(attrs.get("pads")) or []
    spatial = dims[2:]
    if len(pads) == 2 * len(spatial):
        spatial = [d + max(a, 0) + max(b, 0)
                   for d, a, b in zip(spatial, pads[:len(spatial)], pads[len(spatial):],
                                      strict=True)]
    elif pads:  # a wrong count is invalid, but may still be read: bound it by the largest
        spatial = [d + 2 * max(max(pads), 0) for d in spatial]
    channels = dims[1]
    if len(args) > 1 and hasattr(args[1], "shape") and np.ndim(args[1]):
        channels = max(channels, int(np.shape(args[1])[0]))
    return dims[0] * channels * _prod(spatial), _itemsize(args[0])


def _multinomial(args: Sequence[Any], attrs: Mapping[str, Any]) -> tuple[int, int] | None:
    rows = np.shape(args[0])[0] if args and np.ndim(args[0]) else 1
    return int(rows) * max(int(attrs.get("sample_size", 1)), 0), 8


_IMPLIED: dict[str, Implied] = {
    "ConstantOfShape": _constant_of_shape,
    "Expand": _expand,
    "Tile": _tile,
    "Range": _range,
    "OneHot": _one_hot,
    "Pad": _pad,
    "Resize": _resize,
    "Upsample": _resize,
    "RandomNormal": _from_shape_attr,
    "RandomUniform": _from_shape_attr,
    "Gather": _gather,
    "Multinomial": _multinomial,
    "Conv": _windowed,
    "MaxPool": _windowed,
    "AveragePool": _windowed,
    "LpPool": _windowed,
}
# NUMPY's fused operations (its "aioinfer" domain) that read their inputs the same way.
_FUSED: dict[str, Implied] = {"FusedConv": _windowed}


def _implied(op_type: str, domain: str) -> Implied | None:
    if domain in ("", "ai.onnx"):
        return _IMPLIED.get(op_type)
    return _FUSED.get(op_type) if domain == "aioinfer" else None


def check_node(op_type: str, args: Sequence[Any], attrs: Mapping[str, Any], *, node: str,
               device: str | None = None, domain: str = "") -> None:
    """Check the output that node ``node`` (``op_type``, reading ``args`` with attributes
    ``attrs``) would allocate against the cap; a no-op for operations not in the table."""
    implied = _implied(op_type, domain)
    if implied is None:
        return
    try:
        size = implied(args, attrs)
    except (TypeError, ValueError, OverflowError, IndexError):
        return  # malformed inputs: the kernel raises its own error
    if size is not None:
        check_allocation(size[0], size[1], what="its output", node=node, device=device)


class Guarded(functools.partial):
    """A kernel bound like ``functools.partial`` (``.func`` and ``.keywords`` stay the
    kernel's own, for whatever reads them) that checks its node's output size first."""

    op_type: str
    node: str
    device: str | None
    domain: str

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        check_node(self.op_type, args, self.keywords, node=self.node, device=self.device,
                   domain=self.domain)
        return super().__call__(*args, **kwargs)


def guard(fn: Callable[..., Any], op_type: str, node: str, device: str | None = None,
          domain: str = "") -> Callable[..., Any]:
    """``fn`` (a kernel, its attributes bound as ``functools.partial`` keywords) checked
    against the cap if ``op_type`` allocates from values; ``fn`` itself otherwise."""
    if _implied(op_type, domain) is None:
        return fn
    if isinstance(fn, functools.partial):
        wrapped = Guarded(fn.func, *fn.args, **fn.keywords)
    else:
        wrapped = Guarded(fn)
    wrapped.op_type, wrapped.node, wrapped.device = op_type, node, device
    wrapped.domain = domain
    return wrapped
