"""NUMPY's compiled tier: numba kernels beside the NumPy kernels they speed up.

A compiled plan's steps are rewritten once, when the model is compiled (:func:`specialise`):
each step whose kernel has a compiled variant here gets that variant, bound to the same
attributes. A variant takes the cases its compiled code covers (dtypes, layouts, attributes)
and hands every other call to the NumPy kernel, so the two tiers accept the same models.
The choice is made per compiled model and never changes while it runs.

numba is imported only by :func:`specialise` and only when the plan has a step with a
compiled variant (importing this package costs nothing). The tier is off when numba is not
installed (``pip install aioinfer[jit]``), when ``AIOINFER_JIT=0`` is set in the environment, or
when the model is compiled with the NUMPY property ``ENABLE_JIT`` set to False.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

ENV = "AIOINFER_JIT"
PROPERTY = "ENABLE_JIT"  # the NUMPY property (bool)

#: NumPy kernel (module.qualname) -> its compiled variant (module in this package, name)
VARIANTS: dict[str, tuple[str, str]] = {
    "aioinfer.plugins.numpy.kernels.fused.fused_conv": ("conv", "fused_conv"),
    "aioinfer.plugins.numpy.kernels.fused.fused_matmul": ("activations", "fused_matmul"),
    "aioinfer.plugins.numpy.kernels.fused.fused_gemm": ("activations", "fused_gemm"),
    "aioinfer.plugins.numpy.kernels.fused.fused_gelu": ("activations", "fused_gelu"),
    "aioinfer.plugins.numpy.kernels.activations.gelu": ("activations", "gelu"),
    "aioinfer.plugins.numpy.kernels.fused.fused_layer_norm": ("normalization",
                                                              "fused_layer_norm"),
    "aioinfer.plugins.numpy.kernels.normalization.layer_norm": ("normalization", "layer_norm"),
    "aioinfer.plugins.numpy.kernels.softmax.softmax": ("softmax", "softmax"),
    "aioinfer.plugins.numpy.kernels.softmax.softmax_v1": ("softmax", "softmax_v1"),
    "aioinfer.plugins.numpy.kernels.winograd.winograd_conv": ("winograd", "winograd_conv"),
    "aioinfer.plugins.numpy.kernels.affine.channel_affine": ("affine", "channel_affine"),
    "aioinfer.plugins.numpy.kernels.pool.max_pool": ("pool", "max_pool"),
    "aioinfer.plugins.numpy.kernels.pool.average_pool": ("pool", "average_pool"),
}

#: per kind of compiled kernel, the work (multiply-adds or elements) below which a call stays
#: on one thread (``parallel.run_blocks``'s ``min_work``); tests set them to 0
MIN_WORK: dict[str, float] = {"depthwise": 400_000.0, "rows": 400_000.0, "pool": 1_000_000.0}

#: kernels that end a chain of steps fused into one compiled step (jit/attention.py)
_CHAIN_ENDS = frozenset({"aioinfer.plugins.numpy.kernels.softmax.softmax"})

_lock = threading.Lock()
_modules: dict[str, Any] = {}
_failure: list[str] = []  # why numba could not be loaded (once per process)


def env_allows() -> bool:
    """False when the environment turns the compiled tier off (``AIOINFER_JIT=0``)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def installed() -> bool:
    """Whether numba can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def default_enabled() -> bool:
    """The default of ENABLE_JIT: numba installed and not turned off by the environment."""
    return env_allows() and installed()


def _module(name: str) -> Any | None:
    """The variant module ``name`` (imports numba on first use); None if numba fails to load."""
    with _lock:
        if name in _modules:
            return _modules[name]
        if _failure:
            return None
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except Exception as exc:  # noqa: BLE001 - numba missing or broken: the NumPy tier
            _failure.append(f"{type(exc).__name__}: {exc}")
            warnings.warn(f"aioinfer: the compiled (numba) tier is off: {_failure[0]}",
                          RuntimeWarning, stacklevel=3)
            return None
        _modules[name] = module
        return module


def kernel_name(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of the kernel a step calls (through its bound attributes)."""
    base = fn.func if isinstance(fn, functools.partial) else fn
    return f"{getattr(base, '__module__', '')}.{getattr(base, '__qualname__', '')}"


def variant_of(fn: Callable[..., Any]) -> Callable[..., Any] | None:
    """The compiled variant of a step's kernel, bound as it is; None if it has none."""
    where = VARIANTS.get(kernel_name(fn))
    if where is None:
        return None
    module = _module(where[0])
    if module is None:
        return None
    variant = getattr(module, where[1])
    keywords = fn.keywords if isinstance(fn, functools.partial) else {}
    module.warm(where[1], keywords)  # compile or load its kernels now, not in the first run
    if where[1] in getattr(module, "PER_STEP", ()):
        return functools.partial(variant, **keywords, _steps={})  # a cache of this step's own
    return functools.partial(variant, **keywords) if keywords else variant


def _plans_in(fn: Callable[..., Any]) -> Iterator[Any]:
    """Subgraph plans bound to a step (If branches, Loop and Scan bodies)."""
    if not isinstance(fn, functools.partial):
        return
    for value in fn.keywords.values():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if hasattr(v, "steps") and hasattr(v, "constants"):
                yield v


def specialise(plan: Any, enabled: bool = True, *, fuse: bool = True) -> Any:
    """Give ``plan``'s steps (and those of its subgraph plans) their compiled variants, in
    place, when ``enabled``, and fuse the chains of steps the tier runs as one (a new plan
    then; not in subgraph plans, which their steps hold); return the plan to run.
    ``jit_steps`` on it counts the compiled steps."""
    count = 0
    if enabled and env_allows():
        # chains of several steps first, while the steps still have NumPy's kernels
        if fuse and any(kernel_name(s.fn) in _CHAIN_ENDS for s in plan.steps):
            attention = _module("attention")
            if attention is not None:
                plan = attention.fuse(plan, kernel_name)
                if any(s.op_type == "MaskedSoftmax" for s in plan.steps):
                    attention.warm("masked_softmax", {})
                count += sum(s.op_type == "MaskedSoftmax" for s in plan.steps)
        steps = list(plan.steps)
        for index, step in enumerate(steps):
            for sub in _plans_in(step.fn):
                specialise(sub, enabled, fuse=False)
            variant = variant_of(step.fn)
            if variant is not None:
                steps[index] = dataclasses.replace(step, fn=variant)
                count += 1
        if count:
            plan.steps = steps
    plan.jit_steps = count
    return plan


def status() -> dict[str, Any]:
    """What the compiled tier is doing in this process (for ``aioinfer`` diagnostics)."""
    info: dict[str, Any] = {"env_allows": env_allows(), "installed": installed(),
                            "loaded": sorted(_modules), "failure": _failure[0] if _failure
                            else None}
    if _modules:
        from . import _numba

        info["numba"] = _numba.VERSION
        info["cache_dir"] = str(_numba.cache_dir())
    return info
