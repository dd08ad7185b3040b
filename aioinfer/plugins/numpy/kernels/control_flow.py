"""Control flow: If, Loop, Scan, running their subgraphs as pre-compiled plans.

The compiler appends the values a subgraph reads from enclosing scopes after the node's own
inputs; ``plan.n_captured`` says how many there are, and they go after the subgraph's inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...scans import empty_stack, pad_steps
from ..plan import Plan
from ..registry import register


def _split_captured(args: tuple, plan: Plan) -> tuple[list, list]:
    n_own = len(args) - plan.n_captured
    return list(args[:n_own]), list(args[n_own:])


@register("If", since=1)
def if_(cond, *captured, then_branch, else_branch):
    branch = then_branch if bool(np.asarray(cond).reshape(-1)[0]) else else_branch
    return tuple(branch.run(list(captured)))


def _empty(body: Plan, index: int, axis: int = 0) -> np.ndarray:
    """What zero iterations stack body output ``index`` to."""
    if index < len(body.output_ports):
        return empty_stack(body.output_ports[index], axis)
    return np.zeros((0,), dtype=np.float32)


def _stack(slices: list[Any]) -> Any:
    if isinstance(slices[0], list):  # a sequence-typed scan output
        return slices
    return np.stack(slices)


@register("Loop", since=1)
def loop(max_trip_count, cond, *args, body):
    """Loop-carried values thread through ``body``; its per-iteration scan outputs are stacked."""
    carried, captured = _split_captured(args, body)
    limit = None if max_trip_count is None else int(np.asarray(max_trip_count).reshape(-1)[0])
    keep_going = True if cond is None else bool(np.asarray(cond).reshape(-1)[0])
    n = len(carried)
    scans: list[list[Any]] = []
    i = 0
    while keep_going and (limit is None or i < limit):
        outs = body.run([np.array(i, dtype=np.int64), np.array(keep_going), *carried, *captured])
        keep_going = bool(np.asarray(outs[0]).reshape(-1)[0])
        carried = outs[1:1 + n]
        if not scans:
            scans = [[] for _ in outs[1 + n:]]
        for acc, value in zip(scans, outs[1 + n:], strict=True):
            acc.append(value)
        i += 1
    if not scans:
        return (*carried, *(_empty(body, k) for k in range(1 + n, len(body.output_slots))))
    return (*carried, *(_stack(acc) for acc in scans))


def _scan(
    body: Plan, states: list, scans: list, captured: list, in_axes: list[int],
    in_dirs: list[int], out_axes: list[int], out_dirs: list[int],
) -> tuple:
    """Run ``body`` over slices of ``scans``; returns final states then stacked scan outputs."""
    n_state = len(states)
    steps = scans[0].shape[in_axes[0]] if scans else 0
    outputs: list[list[Any]] = [[] for _ in range(len(body.output_slots) - n_state)]
    for t in range(steps):
        slices = [
            np.take(x, steps - 1 - t if d else t, axis=a)
            for x, a, d in zip(scans, in_axes, in_dirs, strict=True)
        ]
        outs = body.run([*states, *slices, *captured])
        states = outs[:n_state]
        for acc, value in zip(outputs, outs[n_state:], strict=True):
            acc.append(value)
    stacked = []
    for k, (acc, axis, direction) in enumerate(zip(outputs, out_axes, out_dirs, strict=True)):
        if not acc:
            stacked.append(_empty(body, n_state + k, axis))
            continue
        if direction:
            acc = acc[::-1]
        stacked.append(np.stack(acc, axis=axis % (acc[0].ndim + 1)))
    return (*states, *stacked)


@register("Scan", since=8)
def scan_8(sequence_lens, *args, body, num_scan_inputs, directions=None):
    """Opset 8: a batch axis 0 and a time axis 1; each batch entry may have its own length."""
    own, captured = _split_captured(args, body)
    n_state = len(own) - num_scan_inputs
    states, scans = own[:n_state], own[n_state:]
    batch = (states or scans)[0].shape[0]
    dirs = list(directions) if directions else [0] * num_scan_inputs
    n_out = len(body.output_slots)
    results: list[tuple] = []
    for b in range(batch):
        length = scans[0].shape[1] if sequence_lens is None else int(sequence_lens[b])
        per = _scan(
            body, [s[b] for s in states], [x[b, :length] for x in scans], captured,
            [0] * len(scans), dirs, [0] * (n_out - n_state), [0] * (n_out - n_state),
        )
        results.append(per)
    steps = scans[0].shape[1] if scans else 0
    return tuple(
        np.stack([r[k] if k < n_state else pad_steps(r[k], steps) for r in results])
        for k in range(n_out)
    )


@register("Scan", since=9)
def scan(
    *args, body, num_scan_inputs, scan_input_axes=None, scan_input_directions=None,
    scan_output_axes=None, scan_output_directions=None,
):
    own, captured = _split_captured(args, body)
    n_state = len(own) - num_scan_inputs
    n_scan_out = len(body.output_slots) - n_state
    return _scan(
        body, own[:n_state], own[n_state:], captured,
        list(scan_input_axes or [0] * num_scan_inputs),
        list(scan_input_directions or [0] * num_scan_inputs),
        list(scan_output_axes or [0] * n_scan_out),
        list(scan_output_directions or [0] * n_scan_out),
    )
