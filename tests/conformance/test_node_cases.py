"""The ONNX node test cases, run through ``aioinfer.backend`` on every built-in device.

Each case runs as outside users would run it (``backend.prepare(model, device).run(inputs)``)
and is compared the way onnx's own backend runner compares, at the case's tolerances (random
operators excepted, see :mod:`.runner`). Known failures are strict xfails from
:mod:`.expected_failures`, each with its reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from aioinfer.testing.conformance import node_cases

from .expected_failures import EXPECTED_FAILURES
from .runner import DEVICES, run_case, run_case_split


def _params() -> list[Any]:
    params = []
    for device in DEVICES:
        known = EXPECTED_FAILURES.get(device, {})
        for case in node_cases():
            marks = []
            if case.name in known:
                marks.append(pytest.mark.xfail(strict=True, reason=known[case.name]))
            params.append(pytest.param(device, case, id=f"{device}-{case.name}", marks=marks))
    return params


@pytest.mark.parametrize(("device", "case"), _params())
def test_node_case(device: str, case: Any) -> None:
    run_case(device, case)


def test_expected_failures_name_real_cases() -> None:
    names = {case.name for case in node_cases()}
    for device, known in EXPECTED_FAILURES.items():
        assert device in DEVICES
        stale = sorted(set(known) - names)
        assert not stale, f"{device}: expected failures for cases onnx no longer has: {stale}"
        empty = sorted(name for name, reason in known.items() if not reason.strip())
        assert not empty, f"{device}: expected failures without a reason: {empty}"


def _multi_node_cases() -> list[Any]:
    return [pytest.param(case, id=case.name) for case in node_cases()
            if len(case.model.graph.node) > 1 and not case.name.startswith("test_bernoulli")]


@pytest.mark.parametrize("case", _multi_node_cases())
def test_node_case_split_over_two_devices(case: Any) -> None:
    """Every case with more than one node, its nodes alternately on NUMPY and TEMPLATE
    (HETERO's AFFINITY): a transfer between every pair of neighbours, same results."""
    run_case_split(case)
