"""One compiled model, one input: the same bytes on every run, at every thread and stream
setting, with requests in flight on several streams (``benchmarks/determinism.py`` does the
same over more models and 100 runs with the CPUs loaded in between)."""

from __future__ import annotations

import asyncio
import pathlib

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import aioinfer
from aioinfer.plugins.numpy.kernels import parallel

from ._blas import rows_consistent

pytestmark = pytest.mark.usefixtures("tier")
LIGHT = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
SQUEEZENET = LIGHT / "light_squeezenet.onnx"


def _runner_input(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    inits = {t.name for t in model.graph.initializer}
    info = next(i for i in model.graph.input if i.name not in inits)
    shape = tuple(d.dim_value for d in info.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    return {info.name: (np.arange(n).reshape(shape) / n).astype(np.float32)}


@pytest.mark.skipif(not SQUEEZENET.exists(), reason="light squeezenet not in this onnx wheel")
def test_light_squeezenet_same_bytes_at_every_thread_and_stream_setting() -> None:
    """The light squeezenet's 9.5e9 logits once differed by an ulp from run to run (adaptive
    BLAS threading); every setting must pass onnx's runner check and give the same bytes."""
    model = onnx.load(str(SQUEEZENET))
    feeds = _runner_input(model)
    want = numpy_helper.to_array(onnx.load_tensor(str(LIGHT / "light_squeezenet_output_0.pb")))
    core = aioinfer.Core()
    outputs = []
    for threads in (1, 2):
        for streams in (1, 2):
            compiled = core.compile_model(str(SQUEEZENET), "NUMPY", {
                "INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": streams})

            async def serve(compiled: aioinfer.CompiledModel = compiled, n: int = 2 * streams
                            ) -> list[np.ndarray]:
                results = await asyncio.gather(*(compiled.infer_async(feeds) for _ in range(n)))
                return [np.asarray(r[0]) for r in results]

            outputs += asyncio.run(serve())
    per_setting = [outputs[k:k + 2 * streams] for k, streams in
                   zip((0, 2, 6, 8), (1, 2, 1, 2), strict=True)]
    for runs in per_setting:  # one compiled model: one result, whatever ran beside it
        assert len({got.tobytes() for got in runs}) == 1
    if parallel.exact_splits():  # a product cut over threads keeps its bits
        assert len({got.tobytes() for got in outputs}) == 1
    if rows_consistent():
        for got in outputs:
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-7)

