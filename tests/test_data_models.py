"""The onnx wheel's model test data (simple, pytorch-converted, pytorch-operator) on NUMPY."""

from __future__ import annotations

import pytest

from aioinfer.testing.data_models import check_data_model, data_model_cases

GRADIENT = "the Gradient op needs automatic differentiation of the graph; NUMPY runs inference only"
EXPECTED_FAILURES = {
    "test_gradient_of_add": GRADIENT,
    "test_gradient_of_add_and_mul": GRADIENT,
}


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=f"{c.folder}/{c.name}", marks=pytest.mark.xfail(
            strict=True, reason=EXPECTED_FAILURES[c.name]) if c.name in EXPECTED_FAILURES else ())
        for c in data_model_cases()
    ],
)
def test_data_model_on_numpy(case) -> None:
    check_data_model(case, "NUMPY")
