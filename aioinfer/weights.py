"""One copy of equal weights across compiled models: onnxruntime's ``ep.share_ep_contexts``.

In onnxruntime the session config entry ``ep.share_ep_contexts`` = ``1`` lets the sessions of
one process share their EPs' resources, chiefly weights: models that share initializers (same
tensor names, same data, often one external weight file) hold one copy of them on the device,
and compiled EP contexts are kept in a process-wide shared workspace for the sessions after
(``ep.stop_share_ep_contexts`` marks the last session of a group when generating them). This
module is aioinfer's form of that for the engine that compiles weights into host arrays,
NUMPY: a process-wide :class:`WeightPool`, consulted by NUMPY's plan compiler while sharing is
on (:func:`sharing`, which :class:`~aioinfer.ort.InferenceSession` turns on for the entry).

Design, and why:

- **Keyed by content, not by name.** A key is (dtype, shape, strides, SHA-256 of the
  bytes), and a
  hit is confirmed by comparing the bytes, so two arrays are shared only when they are equal
  bit for bit; a collision cannot give a model another model's weights. onnxruntime speaks of
  initializers with the same name because its EPs look tensors up by name; here the value is
  all a kernel reads, so the name adds nothing to soundness and would only miss sharing (the
  same weights under other names, or weights NUMPY's passes re-laid out the same way in both
  models, such as folded or transposed ones: the pool sees the plan's constants after the
  passes, which is what stays in memory).
- **Held weakly.** The pool holds ``weakref`` s; the compiled plans hold the arrays. When the
  last model using a weight is released and collected, its memory goes back; the pool never
  keeps a model's weights alive, needs no "stop" call and no clean-up, and a later session
  starts over. (So ``ep.stop_share_ep_contexts`` has nothing to end here; it is accepted.)
- **Read-only.** A pooled array is made read-only (a read-only view of a writable one), so a
  kernel that tried to write into a shared weight fails loudly instead of changing another
  model's weights. Kernels take the plan's constants as inputs only (the compiled tier passes
  them as read-only arrays already), and a weight read from the model is read-only anyway.
- **Only while asked, only what is worth it.** Hashing costs one pass over the weights at
  compile time (SHA-256, hardware-assisted: ~1.3 GB/s here against BLAKE2b's ~0.4 GB/s; a
  97 MB ResNet-50-sized model compiles in ~0.54 s instead of ~0.47 s), so the pool is used
  only inside :func:`sharing`, and only for numeric arrays of at least :data:`MIN_BYTES`
  (small constants cost more to hash than they save) whose memory is one block, C- or
  F-ordered (a pass's transposed weight is F-ordered).
  A :class:`contextvars.ContextVar` carries the switch, so concurrent compiles on other
  threads or tasks are unaffected; NUMPY reads it once per compile and keeps it for the
  static-shape plans it compiles later for that model.
- **Where it does not reach.** Compiled models imported from a cache entry or an EPContext
  blob are not re-hashed: a cache entry's arrays are copy-on-write mappings of its file, so
  sessions loading one entry already share the page cache's single copy. Each model keeps its
  own ``ModelProto`` (the interface and, for dynamic shapes, the graph it re-specialises), and
  engines that keep weights in their own memory (OpenVINO, onnxruntime) are not reached by
  this pool.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = ["MIN_BYTES", "POOL", "WeightPool", "active", "sharing"]

#: Arrays smaller than this are not pooled.
MIN_BYTES = 1024
_KINDS = frozenset("biufcmM")
_ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("aioinfer_share_weights",
                                                               default=False)


@contextlib.contextmanager
def sharing(enabled: bool = True) -> Iterator[None]:
    """Within the block (this thread or task only), compiles pool their weights in
    :data:`POOL` (``enabled=False`` turns it off inside an outer block)."""
    token = _ACTIVE.set(bool(enabled))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def active() -> bool:
    """Whether compiles here pool their weights now."""
    return _ACTIVE.get()


def _poolable(value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.dtype.kind in _KINDS
            and not value.dtype.hasobject and value.nbytes >= MIN_BYTES
            and (value.flags.c_contiguous or value.flags.f_contiguous))


def _bytes(array: np.ndarray) -> np.ndarray:
    """The array's memory block as bytes (a view; a transposed, F-ordered weight too)."""
    block = array if array.flags.c_contiguous else array.T
    return block.reshape(-1).view(np.uint8)


class WeightPool:
    """Equal arrays handed out as one read-only array, held weakly (see the module docstring).
    Thread-safe."""

    def __init__(self) -> None:
        self._arrays: weakref.WeakValueDictionary[tuple[Any, ...], np.ndarray] = (
            weakref.WeakValueDictionary())
        self._lock = threading.Lock()

    def share(self, value: Any) -> Any:
        """The pool's array equal to ``value`` (``value`` itself, made read-only, if it is the
        first); anything not worth pooling comes back as it is."""
        if not _poolable(value):
            return value
        data = _bytes(value)
        key = (value.dtype.str, value.shape, value.strides,
               hashlib.sha256(data.data).digest())
        frozen = value
        if value.flags.writeable:
            frozen = value.view()
            frozen.flags.writeable = False
        with self._lock:
            found = self._arrays.get(key)
            if found is None:
                self._arrays[key] = frozen
                return frozen
        if np.array_equal(_bytes(found), data):  # bit for bit: a collision shares nothing
            return found
        return frozen

    def share_all(self, values: Mapping[Any, Any]) -> dict[Any, Any]:
        """``values`` with each array replaced by the pool's (a new dict)."""
        return {key: self.share(value) for key, value in values.items()}

    def __len__(self) -> int:
        """How many distinct arrays live models hold through the pool now."""
        with self._lock:
            return len(self._arrays)

    def nbytes(self) -> int:
        """Their total size in bytes (each counted once)."""
        with self._lock:
            return sum(a.nbytes for a in self._arrays.values())


#: The process-wide pool NUMPY's compiles use inside :func:`sharing`.
POOL = WeightPool()
