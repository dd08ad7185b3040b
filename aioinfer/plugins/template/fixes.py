"""Operations TEMPLATE adds to, or fixes in, ``onnx.reference``'s set.

Each is an ``OpRun`` subclass with the op's own name and domain, so ``ReferenceEvaluator``'s
``new_ops`` lookup finds it before the built-in implementation (subgraphs inherit the set).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_loop import Loop as _ReferenceLoop
from onnx.reference.ops.op_optional import Optional as _ReferenceOptional
from onnx.reference.ops.op_scatter_elements import ScatterElements

from ...model import port_of


class Scatter(ScatterElements):
    """Scatter-9/11 (deprecated), which the spec defines as ScatterElements; onnx.reference
    has no implementation of its own for it."""

    op_domain = ""


class Optional(_ReferenceOptional):
    """Optional-15 holding its input as is (``None`` when empty). onnx.reference's own
    returns ``[x]``, so an optional that leaves the graph, or that OptionalGetElement
    unwraps, comes out one list too deep, and an empty one (``[None]``) reads as present."""

    op_domain = ""

    def run(self, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        if not args or args[0] is None:
            return (None,)  # OpRun.run's result type check has no place for "empty"
        return super().run(*args, **kwargs)

    def _run(self, x: Any = None, type: Any = None) -> tuple[Any]:
        (wrapped,) = super()._run(x, type=type)
        return (wrapped[0],)


class Loop(_ReferenceLoop):
    """Loop with its scan outputs stacked along a new first axis, as the spec says.

    onnx.reference stacks them with ``np.vstack``: 0-d values come out (n, 1) instead of (n,),
    2-D ones are concatenated instead of stacked, and a loop that runs no iteration fails. Here
    they are ``np.stack``-ed, zero iterations give empty arrays of the body's declared element
    type and dims, and an absent condition means "run M times". The rest follows the
    reference's ``Loop._run``.
    """

    op_domain = ""
    body: Any  # set by OpRun from the graph attribute (a ReferenceEvaluator)
    _run_body: Any  # OpRun's (untyped, dynamically bound) subgraph runner

    def _run(self, M: Any, cond: Any, *args: Any, context: Any = None, body: Any = None,
             attributes: Any = None, bindings: Any = None) -> tuple[Any, ...]:
        body = self.body
        names = body.input_names
        inputs: dict[str, Any] = dict.fromkeys(names)
        inputs.update(zip(names[len(names) - len(args):], args, strict=True))
        inputs.update(context or {})
        index = {name: i for i, name in enumerate(body.output_names)}
        scans: list[list[Any]] = [[] for _ in range(self.K)]
        carried = [inputs[name] for name in names[2:]]
        if cond is None:  # an absent condition: run M times
            cond = np.array(True)
        it = 0
        while cond and (M is None or it < M):
            inputs[names[0]] = np.array(it, dtype=None if M is None else M.dtype)
            inputs[names[1]] = cond
            outputs = self._run_body(inputs, attributes=attributes, bindings=bindings)
            for k in range(self.K):
                scans[k].append(outputs[len(outputs) - self.K + k])
            cond = outputs[index[body.output_names[0]]]
            carried = [outputs[index[o]] for o in body.output_names[1:1 + self.N]]
            inputs.update(zip(names[2:], carried, strict=False))
            it += 1
        stacked = [np.stack(values) if values else self._empty_scan(k)
                   for k, values in enumerate(scans)]
        return self._check_and_fix_outputs((*carried, *stacked))

    def _empty_scan(self, k: int) -> np.ndarray:
        graph = next(a.g for a in self.onnx_node.attribute if a.name == "body")
        port = port_of(graph.output[1 + self.N + k], 1 + self.N + k)
        dims = [d if isinstance(d, int) else 0 for d in port.shape or ()]
        return np.zeros((0, *dims), dtype=port.element_type or np.float32)


#: Operations this plugin adds to, or fixes in, the reference evaluator's set.
BUILTIN_OPS: tuple[type[OpRun], ...] = (Scatter, Optional, Loop)
