"""Per-node profiling of NUMPY plans (``PERF_COUNT``).

A profiled plan is a copy of a plan whose steps' kernels are wrapped with a timer; the plan's
run loop is untouched, so profiling costs nothing when it is off. Each record has the keys the
other plugins use: ``node_name``, ``node_type``, ``exec_type`` (the kernel function),
``status``, ``real_time`` and ``cpu_time`` in seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

from .plan import Plan, Step


def kernel_name(fn: Callable[..., Any]) -> str:
    """``module.function`` of a kernel (through ``functools.partial``)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", "") or ""
    return f"{module.rsplit('.', 1)[-1]}.{getattr(fn, '__qualname__', repr(fn))}"


class PlanProfiler:
    """Profiled copies of plans (cached per plan) and the records of the last run."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self._plans: dict[int, tuple[Plan, Plan]] = {}

    def profiled(self, plan: Plan) -> Plan:
        """A copy of ``plan`` whose kernels append to :attr:`records` when they run."""
        cached = self._plans.get(id(plan))
        if cached is not None and cached[0] is plan:
            return cached[1]
        steps = [dataclasses.replace(step, fn=self._timed(step)) for step in plan.steps]
        copy = dataclasses.replace(plan, steps=steps)
        self._plans[id(plan)] = (plan, copy)
        return copy

    def start(self) -> None:
        """Forget the previous run's records."""
        self.records = []

    def _timed(self, step: Step) -> Callable[..., Any]:
        fn, exec_type = step.fn, kernel_name(step.fn)
        base = {"node_name": step.node, "node_type": step.op_type, "exec_type": exec_type}
        perf, cpu = time.perf_counter, time.thread_time

        def timed(*args: Any) -> Any:
            real0, cpu0 = perf(), cpu()
            status = "FAILED"
            try:
                result = fn(*args)
                status = "EXECUTED"
                return result
            finally:
                self.records.append({**base, "status": status, "real_time": perf() - real0,
                                     "cpu_time": cpu() - cpu0})

        return timed
