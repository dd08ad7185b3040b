"""The notebooks execute top to bottom in a real Jupyter kernel, without an error, and each
shows at least one plot (a PNG in its outputs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = {"quickstart", "streaming", "hetero_proxy", "benchmarks"}
"""The notebooks the README's tour links (issue 15: quick start, streaming with a live plot,
HETERO and the proxy, benchmarks against onnxruntime and OpenVINO)."""


def ensure_python3_kernel() -> None:
    """Make the ``python3`` kernelspec findable (CI images may lack one)."""
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        from ipykernel.kernelspec import install

        install(user=True)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), (
        f"{path.name} is stored with outputs; clear them")
    ensure_python3_kernel()
    # The kernel imports aioinfer from this checkout; "python" in the kernelspec is replaced by
    # this interpreter by jupyter_client.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=240, allow_errors=False,
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute(env=env)  # raises CellExecutionError if any cell raises
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors
    plots = [o for c in code for o in c.outputs
             if o.output_type in ("display_data", "execute_result", "update_display_data")
             and "image/png" in o.get("data", {})]
    assert plots, f"{path.name} shows no plot"


def test_every_notebook_is_there() -> None:
    assert {p.stem for p in NOTEBOOKS} >= EXPECTED
