"""The ``tier`` fixture: kernel tests run once on NumPy's kernels and once on the compiled
(numba) tier, which the plans of ``_ort.compile_model`` and the NUMPY device then use."""

from __future__ import annotations

import pytest

from aioinfer.plugins.numpy.kernels import jit

TIERS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("jit", id="jit", marks=pytest.mark.skipif(
        not jit.installed(), reason="numba is not installed (pip install aioinfer[jit])")),
]


@pytest.fixture(params=TIERS)
def tier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The kernel tier this test runs on (through ``AIOINFER_JIT``)."""
    monkeypatch.setenv(jit.ENV, "1" if request.param == "jit" else "0")
    return str(request.param)
