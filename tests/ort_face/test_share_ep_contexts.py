"""ep.share_ep_contexts: sessions whose models share initializers hold one copy of them
(aioinfer.weights' pool, used by NUMPY's plan compiler)."""

from __future__ import annotations

import gc
import pathlib
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import aioinfer
import aioinfer.onnxruntime as ort
from aioinfer import errors, weights

from .conftest import feeds_for, oracle, small

OV = "OpenVINOExecutionProvider"


def _options(share: str | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    if share is not None:
        options.add_session_config_entry("ep.share_ep_contexts", share)
    return options


def _session(model: object, share: str | None, device: str = "NUMPY") -> ort.InferenceSession:
    return ort.InferenceSession(model, _options(share), providers=[OV],
                                provider_options=[{"device_type": device}], core=aioinfer.Core())


def _constants(session: ort.InferenceSession) -> dict[int, np.ndarray]:
    plan = session.compiled_model.plan
    plan = getattr(plan, "generic", plan)  # a dynamic model's generic plan
    return {k: v for k, v in plan.constants.items()
            if isinstance(v, np.ndarray) and v.nbytes >= weights.MIN_BYTES}


def _mlp(n: int, layers: int, seed: int, share_from: int = 0) -> onnx.ModelProto:
    """MatMul+Relu layers; the first ``share_from`` weights are the same in every seed."""
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        rng = np.random.default_rng(100 + i if i < share_from else seed * 1000 + i)
        inits.append(numpy_helper.from_array(
            (rng.standard_normal((n, n)) * 0.05).astype(np.float32), f"w{i}"))
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]),
                  helper.make_node("Relu", [f"h{i}"], [f"r{i}"])]
        prev = f"r{i}"
    graph = helper.make_graph(nodes, f"mlp{seed}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", n])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("share", ["1", "0", None])
def test_two_sessions_of_one_model_hold_one_copy_only_when_asked(
        share: str | None, cnn_path: pathlib.Path) -> None:
    a, b = _session(str(cnn_path), share), _session(str(cnn_path), share)
    ca, cb = _constants(a), _constants(b)
    assert ca and ca.keys() == cb.keys()
    shared = [np.shares_memory(ca[k], cb[k]) for k in ca]
    assert all(shared) if share == "1" else not any(shared)
    if share == "1":
        assert all(ca[k] is cb[k] for k in ca)  # the very same array
        assert not any(v.flags.writeable for v in ca.values())  # nobody can write into it
    feeds = feeds_for(small("cnn"))
    expected = oracle(small("cnn"), feeds)[0]
    for session in (a, b):
        np.testing.assert_allclose(session.run(None, feeds)[0], expected, rtol=1e-4, atol=1e-4)


def test_models_sharing_some_initializers_share_those_alone() -> None:
    one, two = _mlp(64, 4, seed=1, share_from=2), _mlp(64, 4, seed=2, share_from=2)
    a = _session(one.SerializeToString(), "1")
    b = _session(two.SerializeToString(), "1")
    ca, cb = _constants(a), _constants(b)
    pairs = [(x, y) for x in ca.values() for y in cb.values() if np.shares_memory(x, y)]
    assert len(pairs) == 2 and all(x is y for x, y in pairs)  # w0 and w1, not w2 and w3
    x = np.random.default_rng(0).standard_normal((3, 64)).astype(np.float32)
    for session, model in ((a, one), (b, two)):
        np.testing.assert_allclose(session.run(None, {"x": x})[0], oracle(model, {"x": x})[0],
                                   rtol=1e-4, atol=1e-5)


def test_the_static_plans_of_a_dynamic_model_share_too() -> None:
    model = _mlp(64, 2, seed=3)
    a = _session(model.SerializeToString(), "1")
    x = np.ones((5, 64), np.float32)
    a.run(None, {"x": x})  # compiles the plan for batch 5
    plan = a.compiled_model.plan
    static = plan.plan_for([x])
    generic = set(map(id, _constants(a).values()))
    assert {id(v) for v in static.constants.values() if isinstance(v, np.ndarray)
            and v.nbytes >= weights.MIN_BYTES} <= generic


def test_the_pool_holds_weights_weakly(cnn_path: pathlib.Path) -> None:
    gc.collect()  # the earlier tests' sessions
    before = len(weights.POOL)
    a = _session(str(cnn_path), "1")
    held = len(weights.POOL)
    assert held > before
    b = _session(str(cnn_path), "1")
    assert len(weights.POOL) == held  # the second session added nothing
    del a, b
    gc.collect()
    assert len(weights.POOL) == before  # released with the last session


def test_equal_shapes_with_other_bytes_are_not_shared() -> None:
    pool = weights.WeightPool()
    first = np.arange(1024, dtype=np.float32).reshape(32, 32)
    same = first.copy()
    other = first.copy()
    other[3, 3] += 1
    kept = [pool.share(first), pool.share(same), pool.share(other)]
    assert kept[0] is kept[1] and np.shares_memory(kept[0], first)
    assert not np.shares_memory(kept[2], first)
    kept.append(pool.share(np.asfortranarray(first)))  # same values, other layout
    assert not np.shares_memory(kept[3], first)
    small_one = np.zeros(4, np.float32)
    assert pool.share(small_one) is small_one  # too small to pool
    assert len(pool) == 3
    del kept
    gc.collect()
    assert len(pool) == 0


@pytest.mark.parametrize("key", ["ep.share_ep_contexts", "ep.stop_share_ep_contexts"])
@pytest.mark.parametrize("value", ["yes", "2", "", "true"])
def test_a_bad_value_is_a_typed_error_naming_the_entry(key: str, value: str) -> None:
    options = ort.SessionOptions()
    with pytest.raises(errors.InvalidPropertyValueError, match=key) as caught:
        options.add_session_config_entry(key, value)
    assert caught.value.key == key


def test_stop_share_is_accepted_and_the_last_session_still_shares(
        cnn_path: pathlib.Path) -> None:
    a = _session(str(cnn_path), "1")
    options = _options("1")
    options.add_session_config_entry("ep.stop_share_ep_contexts", "1")
    b = ort.InferenceSession(str(cnn_path), options, providers=[OV],
                             provider_options=[{"device_type": "NUMPY"}], core=aioinfer.Core())
    ca, cb = _constants(a), _constants(b)
    assert all(ca[k] is cb[k] for k in ca)


RSS = """
import gc, os, sys
import numpy as np
import aioinfer.onnxruntime as ort
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
options = ort.SessionOptions()
options.add_session_config_entry("ep.share_ep_contexts", sys.argv[2])
make = lambda: ort.InferenceSession(sys.argv[1], options, providers=[
    ("OpenVINOExecutionProvider", {"device_type": "NUMPY"})])
first = make(); gc.collect(); before = rss()
second = make(); gc.collect(); after = rss()
x = np.ones((1, 1024), np.float32)
assert np.array_equal(first.run(None, {"x": x})[0], second.run(None, {"x": x})[0])
print(after - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_the_second_session_of_a_large_weight_model_costs_no_second_copy(
        tmp_path: pathlib.Path) -> None:
    path = tmp_path / "big.onnx"
    onnx.save(_mlp(1024, 8, seed=4), path)  # 8 x 4 MiB of weights
    weights_bytes = 8 * 1024 * 1024 * 4

    def growth(share: str) -> int:
        done = subprocess.run([sys.executable, "-c", RSS, str(path), share], check=True,
                              capture_output=True, text=True, timeout=300)
        return int(done.stdout.split()[-1])

    alone, shared = growth("0"), growth("1")
    assert alone > weights_bytes  # without it the second session holds its own weights
    assert shared < alone - 0.75 * weights_bytes, (alone, shared)
