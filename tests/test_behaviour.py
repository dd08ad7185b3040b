"""The plugin behaviour suite (aioinfer.testing.behaviour) on every device of this machine."""

from __future__ import annotations

import pytest

import aioinfer
from aioinfer.errors import PluginLoadError
from aioinfer.testing.behaviour import PluginBehaviour, checks

_CANDIDATES = ["NUMPY", "TEMPLATE", "HETERO:NUMPY,TEMPLATE", "HETERO:TEMPLATE,NUMPY"]


def _devices() -> list[object]:
    core = aioinfer.Core()
    names = dict.fromkeys([*_CANDIDATES, *core.available_devices])
    params = []
    for name in names:
        if name == "CPU":  # an alias of NUMPY
            continue
        try:
            core.get_property(name, "SUPPORTED_PROPERTIES")
        except PluginLoadError as exc:
            params.append(pytest.param(name, marks=pytest.mark.skip(
                reason=f"plugin {name} failed to load: {exc}")))
            continue
        params.append(name)
    return params


@pytest.mark.parametrize("check", checks())
@pytest.mark.parametrize("device", _devices())
def test_behaviour(device: str, check: str) -> None:
    suite = type(f"Behaviour{device}", (PluginBehaviour,), {"device": device})()
    getattr(suite, check)()
