"""Whether a device's results may be handed on without a copy.

MULTI, AUTO and BATCH run the requests of many callers on a few worker requests of a device.
When a device writes each run's results into fresh arrays, handing them to the caller costs
nothing. When it reuses a request's output buffers on its next run (as OpenVINO's requests and
ONNX Runtime's IOBinding do), the next caller's run on that worker would overwrite the
previous caller's results: those must be copied first.

A compiled model (or its plugin) says which by a ``fresh_outputs`` attribute: ``True`` if
every run returns arrays no later run writes into. The built-in host plugins are known to:
NUMPY's plan and TEMPLATE's reference evaluator allocate their results per run, and the
OPENVINO and ORT plugins copy the engine's buffers out or get new arrays
(``tests/virtual/test_outputs.py`` checks each). A composite model (HETERO, MULTI, BATCH)
is fresh when everything it is built from is. Anything else is copied.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_KNOWN_FRESH = ("aioinfer.plugins.numpy", "aioinfer.plugins.template",
                "aioinfer.plugins.openvino", "aioinfer.plugins.ort")


def fresh_outputs(compiled: Any) -> bool:
    """Whether ``compiled``'s results may be handed on as they are (see the module doc)."""
    for owner in (compiled, compiled.plugin):
        declared = getattr(owner, "fresh_outputs", None)
        if declared is not None:
            return bool(declared)
    subs = compiled.submodels()
    if subs:
        return all(fresh_outputs(sub) for sub in subs)
    return type(compiled.plugin).__module__.startswith(_KNOWN_FRESH)


def owned(values: list[Any]) -> list[Any]:
    """Copies of the arrays in ``values`` (other values, e.g. sequences, as they are)."""
    return [value.copy() if isinstance(value, np.ndarray) else value for value in values]
