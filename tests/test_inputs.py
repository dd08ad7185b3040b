"""Infer request inputs: the accepted forms, and typed errors for everything else."""

from __future__ import annotations

import numpy as np
import pytest

import aioinfer
from aioinfer import errors

from .models_small import add_relu, linear

X = np.arange(16, dtype=np.float32).reshape(1, 16) - 8


@pytest.fixture(scope="module")
def request_() -> aioinfer.InferRequest:
    return aioinfer.Core().compile_model(add_relu(), "NUMPY").create_infer_request()


def test_dict_list_and_single_array_forms(request_) -> None:
    expected = np.maximum(2 * X, 0)
    np.testing.assert_array_equal(request_.infer({"a": X, "b": X})["d"], expected)
    np.testing.assert_array_equal(request_.infer([X, X])[0], expected)
    ports = request_.inputs
    np.testing.assert_array_equal(request_.infer({ports[0]: X, 1: X})["d"], expected)
    single = aioinfer.Core().compile_model(linear(), "NUMPY")
    assert single(np.ones((2, 8), np.float32))["y"].shape == (2, 4)


def test_results_index_by_name_position_and_port(request_) -> None:
    results = request_.infer({"a": X, "b": X})
    port = request_.outputs[0]
    assert results["d"] is results[0] is results[port]
    assert list(results) == ["d"] and len(results) == 1
    assert request_.results is results


def test_python_lists_are_converted(request_) -> None:
    out = request_.infer({"a": X.tolist(), "b": X.tolist()})
    assert out["d"].dtype == np.float32


def test_missing_input(request_) -> None:
    with pytest.raises(errors.MissingInputError, match="'b'") as info:
        request_.infer({"a": X})
    assert info.value.input_name == "b"


def test_extra_input(request_) -> None:
    with pytest.raises(errors.UnexpectedInputError, match="'c'") as info:
        request_.infer({"a": X, "b": X, "c": X})
    assert info.value.input_name == "c"


def test_wrong_count_in_list(request_) -> None:
    with pytest.raises(errors.MissingInputError):
        request_.infer([X])
    with pytest.raises(errors.UnexpectedInputError):
        request_.infer([X, X, X])


def test_wrong_dtype_names_input_and_expected_type(request_) -> None:
    with pytest.raises(errors.InputTypeError, match=r"'b'.*float64.*float32"):
        request_.infer({"a": X, "b": X.astype(np.float64)})


def test_wrong_rank(request_) -> None:
    with pytest.raises(errors.InputShapeError, match=r"'a'.*rank 1"):
        request_.infer({"a": X[0], "b": X})


def test_wrong_static_dimension(request_) -> None:
    with pytest.raises(errors.InputShapeError, match=r"dimension 1 is 15"):
        request_.infer({"a": X[:, :15], "b": X})


def test_unconvertible_value(request_) -> None:
    with pytest.raises(errors.InputTypeError, match="'a'"):
        request_.infer({"a": [[object()] * 16], "b": X})


def test_request_is_reusable_after_bad_input(request_) -> None:
    with pytest.raises(errors.InputError):
        request_.infer({"a": X})
    np.testing.assert_array_equal(request_.infer([X, X])[0], np.maximum(2 * X, 0))


def test_dynamic_dimension_accepts_any_size() -> None:
    compiled = aioinfer.Core().compile_model(linear(), "NUMPY")
    for batch in (1, 7):
        assert compiled(np.zeros((batch, 8), np.float32))["y"].shape == (batch, 4)


def test_errors_are_in_one_tree() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AioInferError)
    assert issubclass(errors.InputTypeError, TypeError)
    assert issubclass(errors.InputShapeError, ValueError)
