"""numba, imported for the compiled tier only, with its on-disk cache in a per-user directory.

Importing this module imports numba (~0.2 s, ~40 MB). Kernels are compiled with
``nogil=True`` (two streams run them in parallel), ``cache=True`` and IEEE arithmetic
(no ``fastmath``: the same operations in the same order as written, so results are
bit-identical run after run). The cache of *these* kernels goes to ``$AIOINFER_CACHE_DIR/numba``
(default ``$XDG_CACHE_HOME/aioinfer/numba``, i.e. ``~/.cache/aioinfer/numba``), never into
site-packages; a ``NUMBA_CACHE_DIR`` set by the user wins, and other numba code is unaffected.
A cached kernel is reused only while every source file of ``kernels/`` is unchanged.

Writing kernels that vectorise (measured on the depthwise convolution, 3x faster at 7x7):

* no slices in hot loops: each view increments and decrements its parent's reference count
  (atomics), two per view; index the array itself;
* computed indices as unsigned (``np.uint64``): numba wraps a signed index that may be
  negative, a select per load that keeps LLVM from vectorising (``range`` counters are fine);
* no branch on a runtime code (the activation) inside a loop nest: LLVM does not unswitch it
  and the loop stays scalar; write one loop per case (``conv.act_inplace``);
* literal strides (``2 * j``, not ``s * j``) where a copy gathers.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pathlib
from collections.abc import Callable
from typing import Any

import numba
from numba.core import caching as _caching
from numba.core import config as _config

caching: Any = _caching  # numba's internals, untyped for mypy
config: Any = _config

_HERE = pathlib.Path(__file__).resolve().parent


def cache_dir() -> pathlib.Path:
    """Where the compiled kernels of this package are cached."""
    if config.CACHE_DIR:
        return pathlib.Path(config.CACHE_DIR)
    root = os.environ.get("AIOINFER_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "aioinfer")
    return pathlib.Path(root) / "numba"


class _Locator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
    """numba's cache locator for the kernels of this package: the per-user cache directory."""

    def __init__(self, py_func: Any, py_file: str) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = str(cache_dir() / self.get_suitable_cache_subpath(py_file))

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> str:
        # numba checks only the kernel's own file, but kernels inline helpers from other
        # files (_math.exp1) and freeze constants of NumPy kernel modules (the GELU
        # coefficients): any change in kernels/ invalidates every cached kernel.
        return _sources_stamp()

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        if config.CACHE_DIR or pathlib.Path(py_file).resolve().parent != _HERE:
            return None  # the user's NUMBA_CACHE_DIR, or not one of our kernels
        return super().from_function(py_func, py_file)


@functools.lru_cache(maxsize=1)
def _sources_stamp() -> str:
    digest = hashlib.sha256()
    for path in sorted(_HERE.parent.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _install_locator() -> None:
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not isinstance(classes, list):  # a numba whose internals moved: its default locators
        return
    if _Locator not in classes:
        classes.insert(0, _Locator)


_install_locator()


def njit(fn: Callable[..., Any]) -> Any:
    """``numba.njit`` as every kernel of the compiled tier uses it."""
    return numba.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)(fn)


def ro(a: Any) -> Any:
    """``a`` as a read-only array (a view when it is writeable). numba compiles a kernel once
    per argument type, and read-only is part of the type: the plan's constants (weights,
    biases) are read-only, intermediates are not. Every input-only argument of a kernel goes
    through here, so each kernel has one signature per dtype, the one ``warm()`` compiles,
    and no run compiles anything."""
    if not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def njit_inline(fn: Callable[..., Any]) -> Any:
    """A small helper inlined (at numba IR level) into the kernels calling it: a call that
    stays a call costs ~10-20 ns per use and keeps the loop around it from vectorising."""
    return numba.njit(inline="always", cache=True, error_model="numpy", boundscheck=False)(fn)


VERSION = numba.__version__
