"""Without the extras (openvino, onnxruntime) nothing changes and nothing fails to import.

Runs in a fresh interpreter in which both packages cannot be imported, as on a machine that
has neither installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent("""
    import sys

    class Absent:  # a finder that makes the engines uninstalled
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("openvino", "onnxruntime"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Absent())

    import numpy as np
    import aioinfer
    from aioinfer.errors import PluginLoadError
    from aioinfer.testing.behaviour import add_relu_model

    core = aioinfer.Core()
    assert core.available_devices == ["CPU"], core.available_devices
    for device in ("OPENVINO", "ORT"):
        try:
            core.get_property(device, "SUPPORTED_PROPERTIES")
        except PluginLoadError as exc:
            assert exc.device == device
        else:
            raise AssertionError(device + " loaded without its engine")
    compiled = core.compile_model(add_relu_model(), "CPU")
    assert compiled.get_property("EXECUTION_DEVICES") == ["NUMPY"], compiled.get_property(
        "EXECUTION_DEVICES")
    a = np.ones((2, 8), np.float32)
    assert (compiled({"a": a, "b": a})["y"] == 2).all()
    assert not any(m.split(".")[0] in ("openvino", "onnxruntime") for m in sys.modules)
    print("ok")
""")


def test_aioinfer_without_the_engines() -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
