"""Fuzzed models and input sets, each case in a worker subprocess (crashes and hangs are
counted, see :mod:`aioinfer.testing.fuzz`), plus hypothesis-driven cases in process.

CI runs a few hundred of each; ``-m slow`` (or ``benchmarks/fuzz.py``) runs thousands.
"""

from __future__ import annotations

import tempfile
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import aioinfer
from aioinfer.errors import AioInferError, InputError
from aioinfer.testing.fuzz import FAILURES, model_outcome, run_fuzz
from aioinfer.testing.fuzz_mutations import MODEL_MUTATIONS, mutate_model
from aioinfer.testing.fuzz_seeds import SEEDS, add, mlp

ROOT = 16  # the CI run's seed: other roots are other cases


def _assert_clean(report: Any) -> None:
    assert report.n > 0
    assert not report.failures, "\n".join(str(f) for f in report.failures[:10])


def test_fuzzed_models_end_in_typed_errors_or_agreeing_results() -> None:
    report = run_fuzz("models", 240, root=ROOT, batch=120)
    _assert_clean(report)
    assert report.n == 240
    kinds = {o.split(":")[0] for o in report.counts}
    assert "ok" in kinds and "error" in kinds  # the mix reaches both ends, not only parsing


def test_fuzzed_inputs_end_in_named_input_errors_or_right_results() -> None:
    report = run_fuzz("inputs", 240, root=ROOT, batch=240)
    _assert_clean(report)
    assert report.n == 240
    assert report.counts["ok"] > 50


def test_the_harness_counts_a_real_segfault_and_a_real_stall() -> None:
    crashed = run_fuzz("models", 6, root=ROOT, batch=6,
                       env={"AIOINFER_FUZZ_SELF_TEST": "segv:2"})
    assert crashed.n == 6 and [f["i"] for f in crashed.failures] == [2]
    assert crashed.failures[0]["outcome"] == "crash"
    stalled = run_fuzz("inputs", 5, root=ROOT, batch=5, stall=3.0,
                       env={"AIOINFER_FUZZ_SELF_TEST": "hang:1"})
    assert stalled.n == 5 and [f["outcome"] for f in stalled.failures] == ["hang"]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_ten_thousand_of_each() -> None:
    for what in ("models", "inputs"):
        _assert_clean(run_fuzz(what, 10_000, root=1, batch=250))


# -- hypothesis, in process -------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.sampled_from(sorted(SEEDS)),
       kinds=st.lists(st.sampled_from(sorted(MODEL_MUTATIONS)), min_size=1, max_size=3),
       draw=st.integers(0, 2**32 - 1), byte_kind=st.sampled_from([0, 1, 2]))
def test_hypothesis_mutated_models(seed: str, kinds: list[str], draw: int,
                                   byte_kind: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        case = mutate_model(0, seed, kinds, np.random.default_rng(draw), work, byte_kind)
        line = model_outcome(case, deadline=5.0)
    assert line["outcome"].split(":")[0] not in FAILURES, line


_CORE = aioinfer.Core()
_ADD = {d: _CORE.compile_model(add()[0], d) for d in ("NUMPY", "TEMPLATE")}
_MLP = {d: _CORE.compile_model(mlp()[0], d) for d in ("NUMPY", "TEMPLATE")}


def _run(compiled: Any, feed: Any) -> tuple[list[Any] | None, BaseException | None]:
    try:
        return compiled.create_infer_request().infer(feed).to_list(), None
    except Exception as exc:  # noqa: BLE001 - the outcome under test
        return None, exc


_arrays = hnp.arrays(
    dtype=st.one_of(hnp.floating_dtypes(sizes=(16, 32, 64)), hnp.integer_dtypes(),
                    st.just(np.dtype(bool))),
    shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
    elements=None)


@settings(max_examples=150, deadline=None)
@given(x=_arrays, y=_arrays)
def test_hypothesis_inputs_to_the_one_op_model(x: np.ndarray, y: np.ndarray) -> None:
    """Any dtype, any shape, NaN and Inf: a named InputError unless both are float32 [2, 3],
    and then exactly x + y on both devices."""
    for device, compiled in _ADD.items():
        before = (x.copy(), y.copy())
        got, error = _run(compiled, {"x": x, "y": y})
        assert np.array_equal(x, before[0], equal_nan=True)
        assert np.array_equal(y, before[1], equal_nan=True)
        ok = all(a.dtype == np.float32 and a.shape == (2, 3) for a in (x, y))
        if ok:
            assert error is None, (device, error)
            assert got is not None
            np.testing.assert_array_equal(got[0], x + y)
        else:
            assert isinstance(error, InputError), (device, error)
            bad = [n for n, a in (("x", x), ("y", y))
                   if a.dtype != np.float32 or a.shape != (2, 3)]
            assert error.input_name == bad[0], (device, error.input_name, bad)


@settings(max_examples=80, deadline=None)
@given(x=hnp.arrays(np.float32, st.tuples(st.integers(0, 6), st.just(4)),
                    elements=st.floats(width=32, allow_nan=True, allow_infinity=True)),
       layout=st.sampled_from(["plain", "fortran", "strided", "readonly", "reversed"]))
def test_hypothesis_values_and_layouts_on_the_mlp(x: np.ndarray, layout: str) -> None:
    """Any float32 values (NaN and Inf included), any batch (0 too), any memory layout: the
    same results as from a plain copy, and NUMPY agrees with TEMPLATE."""
    if layout == "fortran":
        fed = np.asfortranarray(x)
    elif layout == "strided":
        fed = np.repeat(x[..., None], 2, axis=-1)[..., 0]
    elif layout == "readonly":
        fed = x.copy()
        fed.setflags(write=False)
    elif layout == "reversed":
        fed = x[::-1].copy()[::-1]
    else:
        fed = x
    results = {}
    for device, compiled in _MLP.items():
        got, error = _run(compiled, {"x": fed})
        plain, _ = _run(compiled, {"x": np.ascontiguousarray(x)})
        assert error is None or isinstance(error, AioInferError), error
        assert error is None, error
        assert got is not None and plain is not None
        np.testing.assert_array_equal(got[0], plain[0])
        results[device] = got[0]
    np.testing.assert_allclose(results["NUMPY"], results["TEMPLATE"], rtol=1e-4, atol=1e-5)
