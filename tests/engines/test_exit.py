"""Interpreter exit with engine inferences in flight: a clean exit, never an abort.

Each case runs a real interpreter that leaves OpenVINO or onnxruntime working and exits.
Without the engine plugins' exit guard (:mod:`aioinfer.plugins.engine_exit`) these abort
(SIGABRT: "FATAL: exception not rethrown", "terminate called without an active exception") in
most runs, as the engines alone do.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = """
import threading, time
import numpy as np
import aioinfer
from tests.engines._models import small_cnn
core = aioinfer.Core()
compiled = core.compile_model(small_cnn(), DEVICE, {"PERFORMANCE_HINT": "THROUGHPUT", **CONFIG})
x = np.ones((1, 3, 32, 32), np.float32)
"""

CASES = {
    # started requests whose callbacks would come during finalization
    "started": """
requests = [compiled.create_infer_request() for _ in range(8)]
for request in requests:
    request.start_async(x)
""",
    # a daemon thread inside OpenVINO's sync infer, forever
    "daemon": """
def work():
    request = compiled.create_infer_request()
    try:
        while True:
            request.infer(x)
    except aioinfer.errors.AioInferError:
        pass  # refused or cancelled at exit
threading.Thread(target=work, daemon=True).start()
time.sleep(0.2)
""",
}


ENGINES = {"OPENVINO": ("openvino", {}), "ORT": ("onnxruntime", {}),
           "ORT_RUN_ASYNC": ("onnxruntime", {"ORT_RUN_ASYNC": True})}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_exit_with_inferences_in_flight(engine: str, case: str) -> None:
    module, config = ENGINES[engine]
    pytest.importorskip(module)
    device = engine.split("_")[0]
    script = (f"DEVICE, CONFIG = {device!r}, {config!r}\n" + textwrap.dedent(PRELUDE)
              + textwrap.dedent(CASES[case]) + "print('end')\n")
    for _ in range(2):  # without the guard most exits abort, not all (4 or 5 of 5 measured)
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
        assert done.stdout.strip() == "end"
