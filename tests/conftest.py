"""Shared fixtures: the event loops every async test runs on.

``@pytest.mark.anyio`` tests run once per ``anyio_backend``: asyncio, asyncio with uvloop, and
trio (anyio's pytest plugin picks the fixture up).
"""

from __future__ import annotations

import importlib.util

import pytest

_BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(
        ("asyncio", {"use_uvloop": True}),
        id="uvloop",
        marks=pytest.mark.skipif(importlib.util.find_spec("uvloop") is None,
                                 reason="uvloop is not installed"),
    ),
    pytest.param(
        ("trio", {}),
        id="trio",
        marks=pytest.mark.skipif(importlib.util.find_spec("trio") is None,
                                 reason="trio is not installed"),
    ),
]


@pytest.fixture(params=_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """The event loop an ``@pytest.mark.anyio`` test runs on."""
    return request.param  # type: ignore[no-any-return]
