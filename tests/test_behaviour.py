"""The plugin behaviour suite (aioinfer.testing.behaviour) on every device of this machine."""

from __future__ import annotations

import pytest

import aioinfer
from aioinfer.errors import PluginLoadError
from aioinfer.testing.behaviour import PluginBehaviour, checks

_CANDIDATES = ["NUMPY", "TEMPLATE", "HETERO:NUMPY,TEMPLATE", "HETERO:TEMPLATE,NUMPY", "CPU",
               "MULTI:NUMPY,TEMPLATE", "AUTO", "AUTO:TEMPLATE,NUMPY", "BATCH:NUMPY(4)",
               "OPENVINO", "ORT"]  # the engines: skipped where the extra is not installed
# BATCH's default 1 s timeout would make every lone request of the suite wait for it
_CONFIG = {"BATCH:NUMPY(4)": {"AUTO_BATCH_TIMEOUT": 5}}


def _devices() -> list[object]:
    core = aioinfer.Core()
    names = dict.fromkeys([*_CANDIDATES, *core.available_devices])
    params = []
    for name in names:
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
    config = _CONFIG.get(device, {})

    def compile(self: PluginBehaviour, model: object, extra: dict | None = None) -> object:
        return PluginBehaviour.compile(self, model, {**config, **(extra or {})})  # type: ignore

    suite = type(f"Behaviour{device}", (PluginBehaviour,), {"device": device,
                                                             "compile": compile})()
    getattr(suite, check)()
