"""Run one node case on one device, as the conformance suite does (shared by the suite and
``update_expected.py``)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from aioinfer.testing.conformance import as_numpy, backend_runner, check_case

DEVICES = ("TEMPLATE", "NUMPY", "HETERO:NUMPY,TEMPLATE")

# Random operators: their expected output is one np.random draw, and the spec does not fix
# the generator even with a seed, so only what the spec does fix is checked.
RANDOM_CASES = ("test_bernoulli",)


def run_case(device: str, case: Any) -> None:
    """Raise (AssertionError or the device's error) unless ``case`` passes on ``device``."""
    with warnings.catch_warnings():
        # Overflow, division by zero and NaN warnings are ONNX semantics, not failures.
        warnings.simplefilter("ignore", RuntimeWarning)
        if case.name.startswith(RANDOM_CASES):
            check_random_case(case, device)
        else:
            check_case(case, backend_runner(device))


def check_random_case(case: Any, device: str) -> None:
    """What a random operator's case does fix: element type, shape, values in {0, 1}."""
    run = backend_runner(device)
    for inputs, expected in case.data_sets:
        actual = run(case.model, [as_numpy(v) for v in inputs])
        assert len(actual) == len(expected), f"{len(actual)} outputs, expected {len(expected)}"
        for want, got in zip(expected, actual, strict=True):
            want = as_numpy(want)
            assert got.dtype == want.dtype, f"dtype {got.dtype} != expected {want.dtype}"
            assert got.shape == want.shape, f"shape {got.shape} != expected {want.shape}"
            assert np.isin(got, [0, 1]).all(), f"values other than 0 and 1: {np.unique(got)}"


def run_case_split(case: Any) -> None:
    """``case`` on HETERO with its nodes alternately on NUMPY and TEMPLATE."""
    import aioinfer

    core = aioinfer.Core()

    def run(model: Any, inputs: Any) -> list[Any]:
        read = core.read_model(model)
        affinity = {node.name: ("NUMPY", "TEMPLATE")[k % 2]
                    for k, node in enumerate(read.proto.graph.node)}
        with core.compile_model(read, "HETERO:NUMPY,TEMPLATE", {"AFFINITY": affinity}) as c:
            assert c.get_property("HETERO_NUMBER_OF_SUBMODELS") > 1
            results = c(list(inputs))
            return [results[k] for k in range(len(c.outputs))]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check_case(case, run)
