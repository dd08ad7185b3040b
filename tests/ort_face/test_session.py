"""InferenceSession against onnxruntime's own on real models: same inputs, outputs, metadata
and results; run / run_async / callbacks / RunOptions.terminate / IOBinding / SessionOptions."""

from __future__ import annotations

import json
import pathlib
import threading

import anyio
import numpy as np
import onnxruntime
import pytest

import aioinfer
import aioinfer.onnxruntime as ort
from aioinfer import errors

from .conftest import feeds_for, oracle, small

MODELS = ["cnn", "mlp", "bert", "gpt2"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("device", ["CPU", "NUMPY", "TEMPLATE"])
def test_same_results_as_onnxruntime_and_core(name: str, device: str,
                                               core: aioinfer.Core) -> None:
    proto = small(name)
    feeds = feeds_for(proto)
    providers = (["CPUExecutionProvider"] if device == "CPU"
                 else [("OpenVINOExecutionProvider", {"device_type": device})])
    session = ort.InferenceSession(proto.SerializeToString(), providers=providers, core=core)
    ours = session.run(None, feeds)
    theirs = oracle(proto, feeds)
    via_core = core.compile_model(proto, device)(feeds).to_list()
    assert len(ours) == len(theirs)
    for a, b, c in zip(ours, theirs, via_core, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("name", MODELS)
def test_inputs_outputs_and_metadata_match_onnxruntime(name: str, core: aioinfer.Core) -> None:
    data = small(name).SerializeToString()
    ours = ort.InferenceSession(data, core=core)
    theirs = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    for mine, real in [(ours.get_inputs(), theirs.get_inputs()),
                       (ours.get_outputs(), theirs.get_outputs())]:
        assert [(a.name, a.type, a.shape) for a in mine] == [
            (b.name, b.type, b.shape) for b in real]
    a, b = ours.get_modelmeta(), theirs.get_modelmeta()
    for field in ("producer_name", "graph_name", "domain", "description", "graph_description",
                  "version", "custom_metadata_map"):
        assert getattr(a, field) == getattr(b, field), field
    assert ours.get_providers() == theirs.get_providers() == ["CPUExecutionProvider"]
    assert ours.get_provider_options() == {"CPUExecutionProvider": {}}


def test_path_input_and_output_selection(cnn_path: pathlib.Path, core: aioinfer.Core) -> None:
    session = ort.InferenceSession(str(cnn_path), core=core)
    feeds = feeds_for(small("cnn"))
    (probs,) = session.run(["probabilities"], feeds)
    assert probs.shape == (2, 1000)
    with pytest.raises(errors.InputError, match="no output named 'nope'"):
        session.run(["nope"], feeds)
    with pytest.raises(errors.UnexpectedInputError, match="'extra'"):
        session.run(None, {**feeds, "extra": feeds["input"]})
    with pytest.raises(errors.InputTypeError, match="float64"):
        session.run(None, {"input": feeds["input"].astype(np.float64)})


@pytest.mark.anyio
async def test_run_async_awaits_without_blocking(core: aioinfer.Core) -> None:
    proto = small("mlp")
    session = ort.InferenceSession(proto.SerializeToString(), core=core)
    feeds = feeds_for(proto)
    expected = session.run(None, feeds)
    results: list[list[np.ndarray]] = []

    async def one() -> None:
        results.append(await session.run_async(None, feeds))  # type: ignore[misc]

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(one)
    assert len(results) == 4
    for got in results:
        np.testing.assert_array_equal(got[0], expected[0])


def test_run_async_callback_form(core: aioinfer.Core) -> None:
    proto = small("mlp")
    session = ort.InferenceSession(proto.SerializeToString(), core=core)
    feeds = feeds_for(proto)
    done = threading.Event()
    seen: list[tuple[list[np.ndarray], object, str]] = []

    def callback(outputs: list[np.ndarray], user_data: object, err: str) -> None:
        seen.append((outputs, user_data, err))
        done.set()

    assert session.run_async(None, feeds, callback, "ud") is None
    assert done.wait(10)
    outputs, user_data, err = seen[0]
    assert (user_data, err) == ("ud", "")
    np.testing.assert_array_equal(outputs[0], session.run(None, feeds)[0])


def test_run_options_terminate(core: aioinfer.Core) -> None:
    proto = small("mlp")
    session = ort.InferenceSession(proto.SerializeToString(), core=core)
    feeds = feeds_for(proto)
    options = ort.RunOptions()
    assert session.run(None, feeds, options)[0].shape == (2, 10)
    options.terminate = True
    with pytest.raises(errors.RequestCancelledError, match="terminate"):
        session.run(None, feeds, options)
    options.terminate = False
    assert session.run(None, feeds, options)[0].shape == (2, 10)


def test_io_binding(core: aioinfer.Core) -> None:
    proto = small("mlp")
    session = ort.InferenceSession(proto.SerializeToString(), core=core)
    feeds = feeds_for(proto)
    binding = session.io_binding()
    binding.bind_cpu_input("input", feeds["input"])
    out = np.empty((2, 10), np.float32)
    binding.bind_output("logits", "cpu", value=out)
    session.run_with_iobinding(binding)
    np.testing.assert_array_equal(out, session.run(None, feeds)[0])
    assert binding.get_outputs()[0] is out
    with pytest.raises(errors.NotSupportedError, match="cuda"):
        binding.bind_output("logits", "cuda")


def test_session_options(tmp_path: pathlib.Path, core: aioinfer.Core) -> None:
    proto = small("mlp")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
    options.inter_op_num_threads = 2
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "prof_")
    options.add_session_config_entry("session.some_key", "1")
    assert options.get_session_config_entry("session.some_key") == "1"
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=[("OpenVINOExecutionProvider",
                                               {"device_type": "NUMPY"})], core=core)
    compiled = session.compiled_model
    assert compiled.get_property("INFERENCE_NUM_THREADS") == 1
    assert compiled.get_property("NUM_STREAMS") == 2
    session.run(None, feeds_for(proto))
    trace = json.loads(pathlib.Path(session.end_profiling()).read_text())
    assert any(e["cat"] == "Node" for e in trace) and any(e["cat"] == "Session" for e in trace)
    with pytest.raises(errors.InvalidPropertyValueError, match="intra_op_num_threads"):
        options.intra_op_num_threads = -1
    with pytest.raises(errors.InvalidPropertyValueError, match="graph_optimization_level"):
        options.graph_optimization_level = 7
    with pytest.raises(errors.UnknownPropertyError, match="not set"):
        options.get_session_config_entry("nope")


def test_unknown_and_unavailable_providers(core: aioinfer.Core) -> None:
    data = small("mlp").SerializeToString()
    with pytest.raises(errors.DeviceNotFoundError, match="CUDAExecutionProvider.*not "
                       "available.*OpenVINOExecutionProvider"):
        ort.InferenceSession(data, providers=["CUDAExecutionProvider"], core=core)
    with pytest.raises(errors.DeviceNotFoundError, match="unknown execution provider"):
        ort.InferenceSession(data, providers=["FooExecutionProvider"], core=core)
    with pytest.raises(errors.UnknownPropertyError, match="use_arena"):
        ort.InferenceSession(data, providers=[("CPUExecutionProvider", {"bad": "1"})],
                             core=core)
    assert "OpenVINOExecutionProvider" in ort.get_available_providers()
    assert aioinfer.InferenceSession is ort.InferenceSession


SCRIPT = '''
import sys
import numpy as np
{import_line}
sess_options = ort.SessionOptions()
sess_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
sess_options.intra_op_num_threads = 1
session = ort.InferenceSession(sys.argv[1], sess_options, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
shape = [d if isinstance(d, int) else 2 for d in session.get_inputs()[0].shape]
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
(probs,) = session.run([session.get_outputs()[0].name], {{name: x}})
np.save(sys.argv[2], probs)
print(session.get_providers(), probs.shape)
'''


def test_an_onnxruntime_script_runs_after_changing_its_import(tmp_path: pathlib.Path,
                                                              cnn_path: pathlib.Path) -> None:
    import subprocess
    import sys

    outputs = []
    for label, line in [("ort", "import onnxruntime as ort"),
                        ("aioinfer", "import aioinfer.onnxruntime as ort")]:
        script = tmp_path / f"script_{label}.py"
        script.write_text(SCRIPT.format(import_line=line))
        out = tmp_path / f"{label}.npy"
        done = subprocess.run([sys.executable, str(script), str(cnn_path), str(out)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "['CPUExecutionProvider'] (2, 1000)" in done.stdout
        outputs.append(np.load(out))
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-6)
