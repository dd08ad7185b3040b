"""Run the ONNX project's node test cases against an aioinfer engine.

The comparison follows onnx's own backend test runner: the output dtype must match, object
arrays compare equal, everything else with ``assert_allclose`` at the case's ``rtol``/``atol``,
sequences element by element. Usable from pytest and from the command line::

    python -m aioinfer.testing.conformance --device NUMPY [-k substring] [--engine plan]
"""

from __future__ import annotations

import argparse
import functools
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

Runner = Callable[[onnx.ModelProto, Sequence[Any]], Sequence[Any]]


@functools.cache
def node_cases() -> tuple[Any, ...]:
    """The onnx package's node test cases, collected once (name-sorted)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(sorted(collect_testcases(), key=lambda c: c.name))


def assert_similar(expected: Any, actual: Any, rtol: float, atol: float) -> None:
    """Assert ``actual`` matches ``expected`` the way onnx's backend runner does."""
    if isinstance(expected, (list, tuple)):
        assert isinstance(actual, (list, tuple)), f"expected a sequence, got {type(actual)}"
        assert len(expected) == len(actual), f"sequence length {len(actual)} != {len(expected)}"
        for e, a in zip(expected, actual, strict=True):
            assert_similar(e, a, rtol, atol)
        return
    if expected is None:
        assert actual is None, f"expected None (empty optional), got {type(actual)}"
        return
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != expected {expected.dtype}"
    if expected.dtype == object:
        np.testing.assert_array_equal(actual, expected)
    else:
        assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
        # ml_dtypes (bfloat16, float8, int4, ...) have kind "V": compare their values.
        np.testing.assert_allclose(_comparable(actual), _comparable(expected), rtol=rtol,
                                   atol=atol)


def _comparable(array: np.ndarray) -> np.ndarray:
    return array.astype(np.float64) if array.dtype.kind == "V" else array


def as_numpy(value: Any) -> Any:
    """A case's value as the backend sees it: onnx stores exotic-typed data (float8, int4,
    bfloat16, ...) as ``TensorProto``, which its own runner reads back with
    ``numpy_helper.to_array``; lists (sequences) are converted element by element."""
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    if isinstance(value, list):
        return [as_numpy(v) for v in value]
    return value


def check_case(case: Any, run: Runner) -> None:
    """Run every data set of ``case`` through ``run`` and compare with the expected outputs."""
    model = case.model
    for inputs, expected in case.data_sets:
        inputs = [as_numpy(v) for v in inputs]
        expected = [as_numpy(v) for v in expected]
        actual = run(model, inputs)
        assert len(actual) == len(expected), f"{len(actual)} outputs, expected {len(expected)}"
        for e, a in zip(expected, actual, strict=True):
            assert_similar(e, a, case.rtol, case.atol)


def backend_runner(device: str) -> Runner:
    """A runner that goes through :mod:`aioinfer.backend`, as outside users do."""
    from .. import backend

    def run(model: onnx.ModelProto, inputs: Sequence[Any]) -> Sequence[Any]:
        return list(backend.prepare(model, device).run(list(inputs)))

    return run


def plan_runner(model: onnx.ModelProto, inputs: Sequence[Any]) -> Sequence[Any]:
    """A runner straight on the NUMPY plan compiler (for kernel development)."""
    from ..plugins.numpy.compiler import compile_graph

    opsets = {o.domain: o.version for o in model.opset_import}
    return compile_graph(model.graph, opsets, functions=model.functions).run(list(inputs))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="NUMPY")
    parser.add_argument("--engine", choices=["backend", "plan"], default="backend")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("-v", action="store_true", help="print each failure's reason")
    args = parser.parse_args(argv)
    run = plan_runner if args.engine == "plan" else backend_runner(args.device)
    passed, failed = 0, []
    for case in node_cases():
        if args.k not in case.name:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check_case(case, run)
            passed += 1
        except Exception as exc:  # noqa: BLE001 - a report of every failure is the point
            failed.append(case.name)
            if args.v:
                msg = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                print(f"FAIL {case.name}: {msg.splitlines()[0][:200]}")
    total = passed + len(failed)
    print(f"{passed}/{total} passed ({100 * passed / max(total, 1):.1f}%)")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
