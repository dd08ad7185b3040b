"""graph/partition.py: affinities -> acyclic same-device subgraphs -> sub-models that run."""

from __future__ import annotations

import re

import networkx as nx
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from aioinfer import errors
from aioinfer.graph.partition import Boundary, Partition, Subgraph, partition

from ._util import SHAPE, F, assert_same, feeds, make, run_parts, run_whole

N = helper.make_node


def check_invariants(part: Partition) -> None:
    """Every node in exactly one subgraph of its device; the quotient is acyclic and the
    subgraph order topological; boundaries match the subgraphs' inputs and outputs."""
    model_nodes = [n.name for n in part.model.proto.graph.node]
    placed = [name for sub in part.subgraphs for name in sub.nodes]
    assert sorted(placed) == sorted(model_nodes) and len(set(placed)) == len(placed)
    for sub in part.subgraphs:
        assert [n for n in model_nodes if n in sub.nodes] == list(sub.nodes)  # model order
        assert {part.affinities[n] for n in sub.nodes} == {sub.device}
        assert part.subgraphs[sub.index] is sub
    quotient = part.graph()
    assert nx.is_directed_acyclic_graph(quotient)
    assert all(u < v for u, v in quotient.edges)  # the order is topological
    for b in part.boundaries:
        assert b.producer < b.consumer
        assert b.value in part.subgraphs[b.producer].outputs
        assert b.value in part.subgraphs[b.consumer].inputs
        out_port, in_port = part.ports(b)
        assert part.subgraphs[b.producer].outputs[out_port] == b.value
        assert part.subgraphs[b.consumer].inputs[in_port] == b.value
    cut = {(b.value, b.consumer) for b in part.boundaries}
    assert len(cut) == len(part.boundaries)  # one boundary per (value, consumer)


def chain(n: int) -> tuple:
    ops = ["Relu", "Neg", "Tanh", "Sigmoid", "Abs"]
    nodes = [N(ops[k % len(ops)], [f"v{k}" if k else "x"], [f"v{k + 1}"], name=f"n{k}")
             for k in range(n)]
    nodes[-1].output[0] = "y"
    return make(nodes, ["x"], ["y"]), [f"n{k}" for k in range(n)]


# --- the shapes of partition -------------------------------------------------------------


def test_single_device_is_one_subgraph() -> None:
    # two independent branches from two inputs that join: still one subgraph
    model = make([N("Relu", ["x"], ["a"], name="a"), N("Neg", ["z"], ["b"], name="b"),
                  N("Add", ["a", "b"], ["c"], name="c"), N("Tanh", ["z"], ["d"], name="d")],
                 ["x", "z"], ["c", "d"])
    part = partition(model, dict.fromkeys(["a", "b", "c", "d"], "NUMPY"))
    assert len(part.subgraphs) == 1 and part.boundaries == []
    (sub,) = part.subgraphs
    assert sub == Subgraph(0, "NUMPY", ("a", "b", "c", "d"), ("x", "z"), ("c", "d"))
    assert part.output_source("c") == part.output_source("d") == 0
    check_invariants(part)
    inputs = feeds(model)
    assert_same(run_parts(part, inputs), run_whole(model, inputs))


def test_alternating_devices_make_many_subgraphs() -> None:
    model, names = chain(8)
    part = partition(model, {n: ("NUMPY", "TEMPLATE")[k % 2] for k, n in enumerate(names)})
    assert [s.device for s in part.subgraphs] == ["NUMPY", "TEMPLATE"] * 4
    assert [s.nodes for s in part.subgraphs] == [(n,) for n in names]
    assert part.boundaries == [Boundary(f"v{k}", k - 1, k) for k in range(1, 8)]
    assert part.subgraphs[0].inputs == ("x",) and part.subgraphs[-1].outputs == ("y",)
    assert part.output_source("y") == 7 and part.devices == ["NUMPY", "TEMPLATE"]
    check_invariants(part)
    inputs = feeds(model)
    assert_same(run_parts(part, inputs), run_whole(model, inputs))


def a_b_a() -> object:
    """x -> a1 (A) -> b (B) -> a2 (A), and a1 -> a2 directly."""
    return make([N("Relu", ["x"], ["p"], name="a1"), N("Neg", ["p"], ["q"], name="b"),
                 N("Add", ["p", "q"], ["y"], name="a2")], ["x"], ["y"])


def test_a_b_a_splits_the_a_group() -> None:
    model = a_b_a()
    part = partition(model, {"a1": "NUMPY", "b": "TEMPLATE", "a2": "NUMPY"})
    assert part.subgraph_of("a1") != part.subgraph_of("a2")  # else a cycle A <-> B
    assert [(s.device, s.nodes) for s in part.subgraphs] == [
        ("NUMPY", ("a1",)), ("TEMPLATE", ("b",)), ("NUMPY", ("a2",))]
    assert part.boundaries == [Boundary("p", 0, 1), Boundary("p", 0, 2), Boundary("q", 1, 2)]
    assert list(part.graph().edges(data="values")) == [(0, 1, ["p"]), (0, 2, ["p"]),
                                                       (1, 2, ["q"])]
    check_invariants(part)
    inputs = feeds(model)
    assert_same(run_parts(part, inputs), run_whole(model, inputs))


@pytest.mark.parametrize(("devices", "groups"), [
    ("AAAA", [("top", "left", "right", "join")]),
    ("ABAA", [("top", "right"), ("left",), ("join",)]),
    ("ABBA", [("top",), ("left", "right"), ("join",)]),
    ("AABB", [("top", "left"), ("right", "join")]),
])
def test_diamond(devices: str, groups: list) -> None:
    model = make([N("Relu", ["x"], ["t"], name="top"), N("Neg", ["t"], ["l"], name="left"),
                  N("Tanh", ["t"], ["r"], name="right"), N("Add", ["l", "r"], ["y"], name="join")],
                 ["x"], ["y"])
    names = ["top", "left", "right", "join"]
    part = partition(model, dict(zip(names, devices, strict=True)))
    assert [s.nodes for s in part.subgraphs] == groups
    check_invariants(part)
    inputs = feeds(model)
    assert_same(run_parts(part, inputs, device="NUMPY"), run_whole(model, inputs))


def test_if_body_reading_outer_values() -> None:
    # The If node's branches read `t` (made on another device) and `x` (a model input)
    then = helper.make_graph([N("Add", ["t", "x"], ["o1"])], "then", [],
                             [helper.make_tensor_value_info("o1", F, SHAPE)])
    other = helper.make_graph([N("Sub", ["t", "x"], ["o2"])], "else", [],
                              [helper.make_tensor_value_info("o2", F, SHAPE)])
    model = make([
        N("Relu", ["x"], ["t"], name="make_t"),
        N("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
        N("Greater", ["s", "zero"], ["c"], name="cond"),
        N("If", ["c"], ["y"], name="if", then_branch=then, else_branch=other),
    ], ["x"], ["y"], initializers=[numpy_helper.from_array(np.float32(0), "zero")])
    part = partition(model, {"make_t": "NUMPY", "sum": "NUMPY", "cond": "NUMPY",
                             "if": "TEMPLATE"})
    if_part = part.subgraphs[part.subgraph_of("if")]
    assert set(if_part.inputs) == {"c", "t", "x"}  # the captures are inputs of its subgraph
    assert Boundary("t", 0, if_part.index) in part.boundaries
    assert [(s.device, s.nodes) for s in part.subgraphs] == [
        ("NUMPY", ("make_t", "sum", "cond")), ("TEMPLATE", ("if",))]
    check_invariants(part)
    for seed in range(3):
        inputs = feeds(model, seed)
        assert_same(run_parts(part, inputs), run_whole(model, inputs))


def test_loop_body_reading_outer_values() -> None:
    # acc <- acc * w + b for trip_count steps, with `w` made outside the loop, on another device
    body = helper.make_graph(
        [N("Identity", ["cond_in"], ["cond_out"]), N("Mul", ["acc", "w"], ["m"]),
         N("Add", ["m", "b"], ["acc_out"])], "body",
        [helper.make_tensor_value_info("i", onnx.TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc", F, SHAPE)],
        [helper.make_tensor_value_info("cond_out", onnx.TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", F, SHAPE)])
    model = make([
        N("Sigmoid", ["x"], ["w"], name="weights"),
        N("Loop", ["trips", "", "x"], ["y"], name="loop", body=body),
        N("Neg", ["y"], ["z"], name="after"),
    ], ["x", "b"], ["z"], initializers=[numpy_helper.from_array(np.array(3, np.int64), "trips")])
    part = partition(model, {"weights": "TEMPLATE", "loop": "NUMPY", "after": "TEMPLATE"})
    loop = part.subgraphs[part.subgraph_of("loop")]
    assert loop.inputs == ("x", "w", "b") and loop.outputs == ("y",)  # trips is copied in
    # ONNX infers no rank for a Loop's carried value: the port stays fully dynamic
    assert part.submodel(loop.index).outputs[0].shape is None
    check_invariants(part)
    inputs = feeds(model)
    assert_same(run_parts(part, inputs), run_whole(model, inputs))


def test_initializer_shared_by_two_subgraphs() -> None:
    w = numpy_helper.from_array(np.full(SHAPE, 0.5, np.float32), "w")
    model = make([N("Mul", ["x", "w"], ["a"], name="m1"), N("Add", ["a", "w"], ["y"], name="m2")],
                 ["x"], ["y"], initializers=[w])
    part = partition(model, {"m1": "NUMPY", "m2": "TEMPLATE"})
    assert [s.inputs for s in part.subgraphs] == [("x",), ("a",)]  # `w` is not an input
    for sub in part.subgraphs:
        assert [t.name for t in part.submodel(sub.index).proto.graph.initializer] == ["w"]
    inputs = feeds(model)
    assert_same(run_parts(part, inputs), run_whole(model, inputs))


def test_model_output_that_is_a_model_input_or_an_initializer() -> None:
    k = numpy_helper.from_array(np.ones(SHAPE, np.float32), "k")
    model = make([N("Relu", ["x"], ["y"], name="relu")], ["x"], ["y", "x", "k"],
                 initializers=[k])
    part = partition(model, {"relu": "NUMPY"})
    assert part.output_source("y") == 0
    assert part.output_source("x") is None and part.output_source("k") is None
    assert part.subgraphs[0].outputs == ("y",)
    with pytest.raises(errors.PartitionError, match="'nope'"):
        part.output_source("nope")
    inputs = feeds(model)
    assert_same(run_parts(part, inputs), run_whole(model, inputs))


def test_missing_or_unknown_affinity_names_the_node() -> None:
    model = a_b_a()
    with pytest.raises(errors.PartitionError, match=r"'b' \(Neg\)") as info:
        partition(model, {"a1": "NUMPY", "a2": "NUMPY"})
    assert info.value.node == "b" and isinstance(info.value, ValueError)
    with pytest.raises(errors.PartitionError, match="'ghost'"):
        partition(model, {"a1": "NUMPY", "b": "NUMPY", "a2": "NUMPY", "ghost": "NUMPY"})


def test_partition_is_deterministic_and_views_are_networkx() -> None:
    model, names = chain(6)
    affinities = {n: "AB"[k // 2 % 2] for k, n in enumerate(names)}
    first, second = partition(model, affinities), partition(model, dict(affinities))
    assert first.subgraphs == second.subgraphs and first.boundaries == second.boundaries
    assert [s.nodes for s in first.subgraphs] == [("n0", "n1"), ("n2", "n3"), ("n4", "n5")]
    view = first.node_graph()
    assert view.nodes["n2"] == {"op_type": "Tanh", "device": "B", "subgraph": 1}
    assert view.edges["n1", "n2"]["values"] == ["v2"]
    quotient = first.graph()
    assert quotient.nodes[1] == {"device": "B", "nodes": ("n2", "n3")}
    assert "3 subgraph" not in repr(first) and "#1 B (2 nodes)" in repr(first)


# --- DOT ---------------------------------------------------------------------------------


def test_to_dot_colours_nodes_by_device_and_clusters_subgraphs() -> None:
    model = a_b_a()
    part = partition(model, {"a1": "NUMPY", "b": "TEMPLATE", "a2": "NUMPY"})
    dot = part.to_dot()
    assert dot.startswith('digraph "g" {') and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    fills = dict(re.findall(r'^\s*"([^"]+)" \[label="[^"]*", fillcolor="([^"]+)"\];$', dot,
                            re.M))
    assert {"a1", "b", "a2", "device:NUMPY", "device:TEMPLATE"} <= fills.keys()
    assert fills["a1"] == fills["a2"] == fills["device:NUMPY"]
    assert fills["b"] == fills["device:TEMPLATE"] != fills["a1"]
    assert part.colors() == {"NUMPY": fills["a1"], "TEMPLATE": fills["b"]}
    assert len(re.findall(r"subgraph cluster_\d+ \{", dot)) == 3
    assert 'label="#1 TEMPLATE"' in dot and "cluster_legend" in dot
    assert '"a1" -> "b" [label="p", style=bold];' in dot  # a cut edge names its value
    assert '"input:x" -> "a1";' in dot and '"a2" -> "output:y";' in dot
    # a device keeps its colour in another drawing
    other, names = chain(3)
    again = partition(other, dict(zip(names, ["NUMPY", "NUMPY", "CPU"], strict=True)))
    assert again.colors()["NUMPY"] == fills["a1"]


def test_to_dot_quotes_names() -> None:
    model = make([N("Relu", ["x"], ["y"], name='say "hi" \\ there')], ["x"], ["y"])
    dot = partition(model, {'say "hi" \\ there': "NUMPY"}).to_dot()
    assert '"say \\"hi\\" \\\\ there" [label="say \\"hi\\" \\\\ there\\nRelu"' in dot


# --- random DAGs -------------------------------------------------------------------------

UNARY = ["Relu", "Neg", "Tanh", "Sigmoid", "Abs"]
BINARY = ["Add", "Sub", "Mul", "Max", "Min"]


@st.composite
def random_dag(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(1, 12))
    n_devices = draw(st.integers(1, 3))
    pool = ["x0", "x1", "w"]
    nodes, affinities = [], {}
    for k in range(n):
        binary = draw(st.booleans())
        op = draw(st.sampled_from(BINARY if binary else UNARY))
        ins = [draw(st.sampled_from(pool)) for _ in range(2 if binary else 1)]
        nodes.append(N(op, ins, [f"v{k}"], name=f"n{k}"))
        affinities[f"n{k}"] = "ABC"[draw(st.integers(0, n_devices - 1))]
        pool.append(f"v{k}")
    read = {i for node in nodes for i in node.input}
    made = [f"v{k}" for k in range(n)]
    outputs = [v for v in made if v not in read]
    outputs += [v for v in made if v in read and draw(st.booleans())]
    w = numpy_helper.from_array(np.linspace(-1, 1, 6, dtype=np.float32).reshape(SHAPE), "w")
    return make(nodes, ["x0", "x1"], outputs, initializers=[w]), affinities


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_dag())
def test_random_dags_partition_into_runnable_acyclic_parts(case: tuple) -> None:
    model, affinities = case
    part = partition(model, affinities)
    check_invariants(part)
    node_graph = part.node_graph()
    for u, v in node_graph.edges:  # a node never waits for a later subgraph
        assert node_graph.nodes[u]["subgraph"] <= node_graph.nodes[v]["subgraph"]
    inputs = feeds(model)
    assert_same(run_parts(part, inputs, device="NUMPY"), run_whole(model, inputs))
