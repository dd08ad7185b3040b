"""The execution plan: a flat list of kernel calls over pre-resolved value slots."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from ...errors import InferenceError, RequestCancelledError
from ...model import Port
from ...runtime.pipeline import current_run


@dataclass(frozen=True)
class Step:
    """One kernel call: read ``ins`` slots (``None`` = absent input), write ``outs`` slots."""

    fn: Callable[..., Any]
    ins: tuple[int | None, ...]
    outs: tuple[int, ...]
    node: str
    op_type: str


#: A step as the run loop reads it: kernel, input getter, arity, single output slot (-1 for
#: several), output slots, slots released after it, the step itself (for errors).
_Op = tuple[Callable[..., Any], Any, int, int, tuple[int, ...], tuple[int, ...], Step]


@dataclass
class Plan:
    """A compiled graph.

    ``run`` takes the graph inputs followed by the captured outer-scope values (for subgraphs of
    control-flow ops) and returns the graph outputs in order.
    """

    n_slots: int
    constants: dict[int, Any]
    input_slots: list[int]
    output_slots: list[int]
    steps: list[Step]
    input_names: list[str] = field(default_factory=list)
    output_names: list[str] = field(default_factory=list)
    captured: list[str] = field(default_factory=list)
    device: str = "NUMPY"
    #: the graph outputs as declared: what a Loop or Scan body's zero iterations stack to
    output_ports: list[Port] = field(default_factory=list)

    def __post_init__(self) -> None:
        # One spare slot past the end stays None: absent optional inputs read it.
        template: list[Any] = [None] * (self.n_slots + 1)
        for slot, value in self.constants.items():
            template[slot] = value
        self._template = template
        self._n_captured = len(self.captured)
        self._release = self._last_uses()
        self._program: list[_Op] = []
        self._program_of: list[Step] = []

    def _compiled(self) -> list[_Op]:
        """The steps as tuples the run loop unpacks cheaply (rebuilt if ``steps`` changed)."""
        if self._program_of != self.steps or len(self._program) != len(self.steps):
            absent = self.n_slots
            program = []
            for step, release in zip(self.steps, self._release, strict=True):
                ins = tuple(absent if i is None else i for i in step.ins)
                get = itemgetter(*ins) if ins else None
                single = step.outs[0] if len(step.outs) == 1 else -1
                program.append((step.fn, get, len(ins), single, step.outs, release, step))
            self._program, self._program_of = program, list(self.steps)
        return self._program

    def _last_uses(self) -> list[tuple[int, ...]]:
        """Per step, the slots nothing reads after it: dropped then, so memory is reused.

        Constants and graph outputs are never dropped; a value no step reads is dropped right
        after the step that makes it.
        """
        pinned = set(self.constants) | set(self.output_slots)
        last: dict[int, int] = {}
        for index, step in enumerate(self.steps):
            for slot in (*step.ins, *step.outs):
                if slot is not None and slot not in pinned:
                    last[slot] = index
        release: list[list[int]] = [[] for _ in self.steps]
        for slot, index in last.items():
            release[index].append(slot)
        return [tuple(r) for r in release]

    @property
    def n_captured(self) -> int:
        return self._n_captured

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        env = self._template.copy()
        for slot, value in zip(self.input_slots, inputs, strict=False):
            env[slot] = value
        step = None
        run = current_run()  # the async run served, if any: stop between kernels once cancelled
        try:
            # IEEE results (sqrt(-1) = nan, log(0) = -inf) are ONNX semantics, not warnings.
            with np.errstate(all="ignore"):
                for fn, get, arity, single, outs, release, step in self._compiled():
                    if run is not None and run.cancelled:
                        raise RequestCancelledError(f"cancelled before node {step.node!r}")
                    if arity == 1:
                        result = fn(get(env))
                    elif arity:
                        result = fn(*get(env))
                    else:
                        result = fn()
                    if single >= 0:
                        env[single] = result[0] if isinstance(result, tuple) else result
                    else:
                        for slot, value in zip(outs, result, strict=False):
                            env[slot] = value
                    for slot in release:
                        env[slot] = None
        except (InferenceError, RequestCancelledError):
            raise
        except Exception as exc:
            assert step is not None
            raise InferenceError(
                f"node {step.node!r} ({step.op_type}) failed on {self.device}: {exc}",
                node=step.node,
                device=self.device,
            ) from exc
        return [env[s] for s in self.output_slots]

    __call__ = run


class ShapeSpecializedPlan:
    """A plan per distinct set of input shapes, for graphs with dynamic input dimensions.

    Each new set of input shapes gets a plan compiled for exactly those shapes (its shape
    computations fold, its Reshape targets become constants), kept in a small LRU cache; the
    generic plan (dynamic shapes) runs inputs that are not all arrays, and any shape whose
    specialisation fails to compile (the run then reports the real error, if there is one).
    """

    def __init__(self, generic: Plan, compile_for: Callable[[tuple[tuple[int, ...], ...]], Plan],
                 limit: int = 8) -> None:
        self.generic = generic
        self._compile_for = compile_for
        self._limit = limit
        self._plans: OrderedDict[tuple[tuple[int, ...], ...], Plan] = OrderedDict()
        self._lock = threading.Lock()
        self.n_inputs = len(generic.input_names)

    def plan_for(self, inputs: Sequence[Any]) -> Plan:
        """The plan specialised for the shapes of ``inputs`` (compiled on first sight)."""
        own = inputs[: self.n_inputs]
        if not all(isinstance(x, np.ndarray) for x in own):
            return self.generic
        key = tuple(x.shape for x in own)
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
            try:
                plan = self._compile_for(key)
            except Exception:  # noqa: BLE001 - e.g. shapes the model rejects: the generic plan
                plan = self.generic  # runs them and raises the typed error with the node
            self._plans[key] = plan
            if len(self._plans) > self._limit:
                self._plans.popitem(last=False)
            return plan

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        return self.plan_for(inputs).run(inputs)

    __call__ = run

    def __getattr__(self, name: str) -> Any:
        if name == "generic":
            raise AttributeError(name)
        return getattr(self.generic, name)  # input/output names, steps, ... of the model
