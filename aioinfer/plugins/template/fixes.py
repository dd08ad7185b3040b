"""Operations TEMPLATE adds to, or fixes in, ``onnx.reference``'s set.

Each is an ``OpRun`` subclass with the op's own name and domain, so ``ReferenceEvaluator``'s
``new_ops`` lookup finds it before the built-in implementation (subgraphs inherit the set).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import onnx
from onnx.reference.op_run import OpRun
from onnx.reference.ops.op_dequantize_linear import _CommonDequantizeLinear
from onnx.reference.ops.op_loop import Loop as _ReferenceLoop
from onnx.reference.ops.op_optional import Optional as _ReferenceOptional
from onnx.reference.ops.op_scan import Scan as _ReferenceScan
from onnx.reference.ops.op_scatter_elements import ScatterElements

from ...graph.ir import attr
from ...model import port_of
from ..scans import empty_stack, pad_steps
from .cancel import stop_if_cancelled


class Scatter(ScatterElements):
    """Scatter-9/11 (deprecated), which the spec defines as ScatterElements; onnx.reference
    has no implementation of its own for it."""

    op_domain = ""


class GatherElements(OpRun):
    """GatherElements-11/13 as ``np.take_along_axis``. onnx.reference's goes through
    ``np.choose``, which takes at most 32 (NumPy 1) or 64 choices: past that it falls back
    to a 2-D path that reads one element per row, so ``data [1, 512]`` gathered with
    ``indices [1, 128]`` along axis 1 (torch's BERT export) fails. Here negative indices
    count from the end, an index out of range is a ValueError naming it, and ``indices``
    may be smaller than ``data`` on the other axes, as the spec allows."""

    op_domain = ""

    def _run(self, data: np.ndarray, indices: np.ndarray, axis: int = 0) -> tuple[Any]:
        if data.ndim != indices.ndim:
            raise ValueError(f"indices have rank {indices.ndim}, data rank {data.ndim}")
        axis = int(axis)
        if not -data.ndim <= axis < max(data.ndim, 1):
            raise ValueError(f"axis {axis} is out of range for rank {data.ndim}")
        axis %= max(data.ndim, 1)
        if any(i > d for k, (i, d) in enumerate(zip(indices.shape, data.shape, strict=True))
               if k != axis):
            raise ValueError(f"indices shape {indices.shape} exceeds data shape "
                             f"{data.shape} outside axis {axis}")
        if indices.size == 0:
            return (np.empty(indices.shape, dtype=data.dtype),)
        n = data.shape[axis]
        index = indices.astype(np.int64, copy=False)
        if index.min() < -n or index.max() >= n:
            raise ValueError(f"an index is outside [{-n}, {n - 1}] (axis {axis})")
        index = np.where(index < 0, index + n, index)
        window = tuple(slice(None) if k == axis else slice(0, i)
                       for k, i in enumerate(indices.shape))
        return (np.take_along_axis(data[window], index, axis=axis),)


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
        inputs: dict[str, Any] = dict(context or {})  # the body's own inputs shadow these
        inputs.update(dict.fromkeys(names))
        inputs.update(zip(names[len(names) - len(args):], args, strict=True))
        index = {name: i for i, name in enumerate(body.output_names)}
        scans: list[list[Any]] = [[] for _ in range(self.K)]
        carried = [inputs[name] for name in names[2:]]
        if cond is None:  # an absent condition: run M times
            cond = np.array(True)
        it = 0
        while cond and (M is None or it < M):
            stop_if_cancelled(f"iteration {it} of Loop {self.onnx_node.name!r}")
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
        return _empty_output(self.onnx_node, 1 + self.N + k)


class Scan(_ReferenceScan):
    """Scan with what onnx.reference leaves out: opset 8's batch axis and ``sequence_lens``
    (the reference reads an opset-8 model's inputs as Scan-9's), scan axes and reverse
    directions other than 0 (it raises), and zero-length scans (it raises)."""

    op_domain = ""
    body: Any  # set by OpRun from the graph attribute (a ReferenceEvaluator)
    _run_body: Any  # OpRun's (untyped, dynamically bound) subgraph runner

    def __init__(self, onnx_node: onnx.NodeProto, run_params: dict[str, Any]) -> None:
        OpRun.__init__(self, onnx_node, run_params)  # not the reference's "axis 0 only" checks
        self.input_names = self.body.input_names
        self.output_names = self.body.output_names
        self.opset = int(run_params["opsets"].get("", 0))

    def _run(self, *args: Any, context: Any = None, attributes: Any = None,
             bindings: Any = None, **_: Any) -> tuple[Any, ...]:
        n_in = int(attr(self.onnx_node, "num_scan_inputs", 0))
        run = functools.partial(self._scan, context=context, attributes=attributes,
                                bindings=bindings)
        if self.opset >= 9:
            n_out = len(self.output_names) - (len(args) - n_in)
            return self._check_and_fix_outputs(run(
                list(args[:len(args) - n_in]), list(args[len(args) - n_in:]),
                list(attr(self.onnx_node, "scan_input_axes", [0] * n_in)),
                list(attr(self.onnx_node, "scan_input_directions", [0] * n_in)),
                list(attr(self.onnx_node, "scan_output_axes", [0] * n_out)),
                list(attr(self.onnx_node, "scan_output_directions", [0] * n_out))))
        lens, own = args[0], args[1:]  # opset 8: axis 0 is a batch axis, axis 1 the scan's
        n_state = len(own) - n_in
        states, scans = own[:n_state], own[n_state:]
        dirs = list(attr(self.onnx_node, "directions", [0] * n_in))
        n_out = len(self.output_names) - n_state
        steps = scans[0].shape[1]
        per = [run([s[b] for s in states],
                   [x[b, : steps if lens is None else int(lens[b])] for x in scans],
                   [0] * n_in, dirs, [0] * n_out, [0] * n_out)
               for b in range((states or scans)[0].shape[0])]
        return self._check_and_fix_outputs(tuple(
            np.stack([r[k] if k < n_state else pad_steps(r[k], steps) for r in per])
            for k in range(len(self.output_names))))

    def _scan(self, states: list, scans: list, in_axes: list[int], in_dirs: list[int],
              out_axes: list[int], out_dirs: list[int], *, context: Any, attributes: Any,
              bindings: Any) -> tuple[Any, ...]:
        n_state = len(states)
        steps = scans[0].shape[in_axes[0]] if scans else 0
        acc: list[list[Any]] = [[] for _ in self.output_names[n_state:]]
        for t in range(steps):
            stop_if_cancelled(f"step {t} of Scan {self.onnx_node.name!r}")
            feeds: dict[str, Any] = dict(context or {})  # the body's own inputs shadow these
            feeds.update(zip(self.input_names[:n_state], states, strict=True))
            feeds.update(
                (name, np.take(x, steps - 1 - t if d else t, axis=a))
                for name, x, a, d in zip(self.input_names[n_state:], scans, in_axes, in_dirs,
                                         strict=True))
            outs = self._run_body(feeds, attributes=attributes, bindings=bindings)
            states = list(outs[:n_state])
            for values, value in zip(acc, outs[n_state:], strict=True):
                values.append(value)
        stacked = []
        for k, (values, axis, direction) in enumerate(zip(acc, out_axes, out_dirs,
                                                            strict=True)):
            if not values:
                stacked.append(_empty_output(self.onnx_node, n_state + k, axis))
                continue
            ordered = values[::-1] if direction else values
            stacked.append(np.stack(ordered, axis=axis % (values[0].ndim + 1)))
        return (*states, *stacked)


def _empty_output(node: onnx.NodeProto, index: int, axis: int = 0) -> np.ndarray:
    """What zero iterations stack body output ``index`` of ``node`` to."""
    graph = next(a.g for a in node.attribute if a.name == "body")
    return empty_stack(port_of(graph.output[index], index), axis)


class DequantizeLinear(_CommonDequantizeLinear):
    """DequantizeLinear-10/13 (per-tensor, then per-axis): onnx.reference implements the op
    from opset 19 only, so every QDQ model of opset 13..18 (what quantizers write) failed to
    compile. The common kernel with the later attributes at their defaults is the 10/13
    semantics; models of opset >= 19 keep the reference's own versions (:func:`legacy_ops`)."""

    op_domain = ""

    def _run(self, x: np.ndarray, x_scale: np.ndarray, x_zero_point: Any = None,
             axis: int = 1, block_size: int = 0, output_dtype: Any = None) -> Any:
        if x_scale.ndim > 1:
            raise ValueError("x_scale must be a scalar or a 1-D tensor")
        return super()._run(x, x_scale, x_zero_point, axis=1 if axis is None else axis)


def legacy_ops(opsets: dict[str, int]) -> tuple[type[OpRun], ...]:
    """Implementations for the opset versions onnx.reference leaves out, for a model
    importing ``opsets``."""
    return (DequantizeLinear,) if 10 <= opsets.get("", 0) < 19 else ()


#: Operations this plugin adds to, or fixes in, the reference evaluator's set.
BUILTIN_OPS: tuple[type[OpRun], ...] = (Scatter, GatherElements, Optional, Loop, Scan)
