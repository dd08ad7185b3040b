"""TemplateInferRequest: one request's buffers and pipeline (OpenVINO:
``sync_infer_request.cpp``; the shared :class:`aioinfer.InferRequest` plays the part of
``async_infer_request.cpp`` for every plugin).

A plugin never runs its own request. It only says which stages make one inference and on
which executor each runs; :class:`aioinfer.InferRequest` runs them inline for ``infer()`` and
awaits each on its executor for ``infer_async()``. Stages are plain synchronous methods that
pass data through attributes of the request, in order:

``preprocess`` (host executor)
    ``self.inputs`` (already converted and checked against the model's ports by
    ``InferRequest``) -> ``self._feed``, the evaluator's ``{name: value}`` dict.
``infer`` (the compiled model's device executor, one worker per stream)
    runs the evaluator: ``self._feed`` -> ``self._raw``.
``postprocess`` (host executor)
    ``self._raw`` -> ``self.outputs``, in the model's output order and ONNX's numpy types.

Keeping host work off the device executor means a stream's worker only ever evaluates; with
several requests in flight, one request's pre/postprocessing overlaps another's inference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from onnx import AttributeProto, NodeProto, helper
from onnx.reference import ReferenceEvaluator

from ... import properties as P
from ...errors import InferenceError, RequestCancelledError
from ...limits import check_node
from ...runtime.executors import HOST
from ..base import Stage, SyncInferRequest
from .cancel import stop_if_cancelled
from .support import first_line

if TYPE_CHECKING:
    from .compiled_model import TemplateCompiledModel


class TemplateInferRequest(SyncInferRequest):
    """A request with its own evaluator (see :mod:`.compiled_model` for why)."""

    compiled: TemplateCompiledModel

    def __init__(self, compiled: TemplateCompiledModel) -> None:
        super().__init__(compiled)
        self._input_names = [port.name for port in compiled.inputs]
        self._feed: dict[str, Any] = {}
        self._raw: list[Any] = []
        self._profiling = False
        self._records: list[dict[str, Any]] = []
        self._evaluator = compiled.take_evaluator()
        _guard_nodes(self._evaluator, self)

    # -- the pipeline -----------------------------------------------------------------------------
    def stages(self) -> list[Stage]:
        return [
            Stage("preprocess", HOST, self.preprocess),
            Stage("infer", self.compiled.executor, self.infer),
            Stage("postprocess", HOST, self.postprocess),
        ]

    def preprocess(self) -> None:
        """Inputs -> the evaluator's feed. ``InferRequest`` has already checked element
        types and shapes; what is left is the evaluator's calling convention."""
        # PERF_COUNT may be switched on the compiled model between inferences.
        self._profiling = bool(self.compiled.get_property(P.PERF_COUNT))
        self._records = []
        self._feed = dict(zip(self._input_names, self.inputs, strict=True))

    def infer(self) -> None:
        """Run the evaluator. A failing node raises :class:`InferenceError` naming it."""
        try:
            # IEEE results (overflow to inf, 0/0 = nan) are ONNX semantics, not warnings.
            with np.errstate(all="ignore"):
                self._raw = list(self._evaluator.run(None, self._feed))
        except (InferenceError, RequestCancelledError):
            raise
        except Exception as exc:  # failures outside any node (a missing value, say)
            raise InferenceError(
                f"{self.compiled.device}: inference of model {self.compiled.model.name!r} "
                f"failed: {type(exc).__name__}: {first_line(exc)}",
                device=self.compiled.device,
            ) from exc
        finally:
            self._feed = {}  # drop input references between runs

    def postprocess(self) -> None:
        """Raw evaluator results -> ``self.outputs`` as ONNX's numpy types."""
        self.outputs = [_onnx_value(value) for value in self._raw]
        self._raw = []

    # -- profiling ---------------------------------------------------------------------------------
    # Stage timings are recorded by aioinfer.InferRequest for every plugin; a plugin adds what
    # only it can see, here the time of each node.
    def record(self, name: str, op_type: str, real_time: float, cpu_time: float) -> None:
        """Add one node's profiling entry (OpenVINO's ProfilingInfo fields, in seconds)."""
        self._records.append({
            "node_name": name, "node_type": op_type, "exec_type": "onnx.reference",
            "status": "EXECUTED", "real_time": real_time, "cpu_time": cpu_time,
        })

    def profiling_info(self) -> list[dict[str, Any]]:
        """The top-level nodes of the last inference with their times, in the order they
        ran (empty unless PERF_COUNT was on)."""
        return list(self._records)

    @property
    def profiling(self) -> bool:
        return self._profiling


def _guard_nodes(evaluator: ReferenceEvaluator, request: TemplateInferRequest) -> None:
    """Wrap each top-level node's ``run`` so that a failure names the node and, with
    profiling on, each node is timed. ``rt_nodes_`` (the evaluator's loaded nodes, each with
    its ``onnx_node``) is onnx.reference's own attribute; without it, failures still become
    InferenceError, without the node."""
    device = request.compiled.device
    for op in getattr(evaluator, "rt_nodes_", ()):
        node = getattr(op, "onnx_node", None)
        if node is not None:
            op.run = _guarded(op.run, node, device, request)


def _guarded(run: Callable[..., Any], onnx_node: NodeProto, device: str,
             request: TemplateInferRequest) -> Callable[..., Any]:
    node, op_type, domain = onnx_node.name, onnx_node.op_type, onnx_node.domain
    attrs = {a.name: helper.get_attribute_value(a) for a in onnx_node.attribute
             if not a.ref_attr_name and a.type != AttributeProto.GRAPH}

    def guarded(*args: Any, **kwargs: Any) -> Any:
        start, cpu_start = time.perf_counter(), time.thread_time()
        stop_if_cancelled(node)
        check_node(op_type, args, attrs, node=node, device=device, domain=domain)
        try:
            result = run(*args, **kwargs)
        except RequestCancelledError:
            raise
        except Exception as exc:
            raise InferenceError(
                f"node {node!r} ({op_type}) failed on {device}: {type(exc).__name__}: "
                f"{first_line(exc)}",
                node=node, device=device,
            ) from exc
        if request.profiling:
            request.record(node, op_type, time.perf_counter() - start,
                           time.thread_time() - cpu_start)
        return result

    return guarded


def _onnx_value(value: Any) -> Any:
    """ONNX's numpy conventions: strings are object arrays, scalars 0-d arrays; sequences
    (lists) and empty optionals (None) keep their form."""
    if isinstance(value, list):
        return [_onnx_value(v) for v in value]
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "US":
        return value.astype(object)
    return value
