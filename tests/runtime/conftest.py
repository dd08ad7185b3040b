"""Compiled models shared by the runtime tests (compiled once per module)."""

from __future__ import annotations

import pytest

import aioinfer

from .models import add_model, matmul_chain


@pytest.fixture(scope="module")
def add_compiled() -> aioinfer.CompiledModel:
    """[1,16] + [1,16] on NUMPY: the cheapest real request."""
    return aioinfer.Core().compile_model(add_model(), "NUMPY")


@pytest.fixture(scope="module")
def slow_compiled() -> aioinfer.CompiledModel:
    """A chain of MatMuls on NUMPY: long enough to catch a request while it runs."""
    return aioinfer.Core().compile_model(matmul_chain(), "NUMPY")
