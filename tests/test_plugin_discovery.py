"""Third-party plugins are found through the ``aioinfer.plugins`` entry-point group."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import aioinfer
from aioinfer import core as core_module
from aioinfer import errors

from .models_small import add_relu

PLUGIN_MODULE = '''
from aioinfer.plugins.numpy import NumpyPlugin


class EchoPlugin(NumpyPlugin):
    """A third-party device: the NUMPY engine under another name."""


def broken(name):
    raise RuntimeError("this plugin cannot start here")
'''


@pytest.fixture
def installed_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real (if tiny) installed distribution on sys.path declaring two entry points."""
    (tmp_path / "echo_plugin.py").write_text(PLUGIN_MODULE)
    info = tmp_path / "echo_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[aioinfer.plugins]\nECHO = echo_plugin:EchoPlugin\nBROKEN = echo_plugin:broken\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    core_module._entry_point_plugins.cache_clear()
    yield tmp_path
    core_module._entry_point_plugins.cache_clear()
    sys.modules.pop("echo_plugin", None)


def test_entry_point_plugin_is_found_and_runs(installed_distribution: Path) -> None:
    core = aioinfer.Core()
    assert "ECHO" in core.available_devices
    x = np.ones((1, 16), np.float32)
    compiled = core.compile_model(add_relu(), "ECHO")
    np.testing.assert_array_equal(compiled([x, x])["d"], 2 * x)
    assert compiled.get_property("EXECUTION_DEVICES") == ["ECHO"]


def test_entry_point_plugin_that_fails_is_skipped_and_named(installed_distribution: Path) -> None:
    core = aioinfer.Core()
    assert "BROKEN" not in core.available_devices
    with pytest.raises(errors.PluginLoadError, match="BROKEN.*cannot start"):
        core.compile_model(add_relu(), "BROKEN")


def test_registered_plugin_wins_over_entry_point(installed_distribution: Path) -> None:
    from aioinfer.plugins.template import TemplatePlugin
    from aioinfer.plugins.template.compiled_model import TemplateCompiledModel

    core = aioinfer.Core()
    core.register_plugin(TemplatePlugin("ECHO"), "ECHO")
    assert isinstance(core.compile_model(add_relu(), "ECHO"), TemplateCompiledModel)
