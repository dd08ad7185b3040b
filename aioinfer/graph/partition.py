"""Cut a model into device subgraphs: affinities -> acyclic subgraphs -> boundary values.

Every top-level node has a device (its *affinity*). :func:`partition` groups the nodes into
subgraphs of one device each, such that the graph of subgraphs (the *quotient*: an edge where
a value made in one subgraph is read in another) has no cycle, so the subgraphs can run one
after another in :attr:`Partition.subgraphs` order, each handing its outputs on. A value read
across a cut is a :class:`Boundary` (one per value and consumer subgraph); each subgraph becomes
a model of its own with :meth:`Partition.submodel` (:meth:`aioinfer.Model.extract`).

The grouping walks the nodes in model (topological) order. A node joins a subgraph of its
device unless that subgraph is an ancestor, in the quotient built so far, of a subgraph the
node reads from: joining it would close a cycle (A -> B -> A', where A' reads both A and B).
Among the subgraphs it may join it takes the latest one it reads from, else the latest other
one of its device (independent work of one device shares a subgraph); when it may join none it
starts a new one. Each step keeps the quotient acyclic, and the result is checked.
Values that If/Loop/Scan bodies read from the outer graph count as reads of their node.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx

from ..errors import PartitionError
from .ir import node_reads

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["Boundary", "Partition", "Subgraph", "partition"]

# Fill colours for devices in DOT drawings (light, distinct, readable under black text).
_PALETTE = (
    "#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#80b1d3", "#b3de69", "#fccde5", "#ffffb3",
    "#bc80bd", "#ccebc5", "#ffed6f", "#d9d9d9",
)


@dataclass(frozen=True)
class Subgraph:
    """One device's share of a model, run as one sub-model.

    ``nodes`` are in model order; ``inputs`` are the values read from outside (model inputs
    or other subgraphs' outputs; initializers are copied in instead, and the outer values
    that subgraph bodies read count); ``outputs`` are the values made here that a later
    subgraph reads or that are model outputs.
    """

    index: int
    device: str
    nodes: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Boundary:
    """A value crossing a cut: made by subgraph ``producer``, read by subgraph ``consumer``."""

    value: str
    producer: int
    consumer: int


class Partition:
    """The subgraphs of a model (in a topological order) and the values crossing between them."""

    def __init__(
        self, model: Model, subgraphs: list[Subgraph], affinities: dict[str, str],
        producers: dict[str, int],
    ) -> None:
        self.model = model
        self.subgraphs = subgraphs
        self.affinities = affinities
        self._producers = producers  # value -> index of the subgraph making it
        self.boundaries = [
            Boundary(value, producers[value], sub.index)
            for sub in subgraphs for value in sub.inputs if value in producers
        ]
        self._of = {name: sub.index for sub in subgraphs for name in sub.nodes}

    @property
    def devices(self) -> list[str]:
        """The devices used, in the order of their first subgraph."""
        return list(dict.fromkeys(sub.device for sub in self.subgraphs))

    def subgraph_of(self, node: str) -> int:
        """The index of the subgraph holding top-level node ``node``."""
        try:
            return self._of[node]
        except KeyError:
            raise PartitionError(f"the model has no node {node!r}", node=node) from None

    def output_source(self, name: str) -> int | None:
        """The subgraph making value ``name`` (a model output), or ``None`` when it is a model
        input or an initializer, which no subgraph makes."""
        if name in self._producers:
            return self._producers[name]
        graph = self.model.proto.graph
        if any(name == v.name for v in (*graph.input, *graph.initializer)) or any(
            name == t.values.name for t in graph.sparse_initializer
        ):
            return None
        raise PartitionError(f"no node of the model makes {name!r}", value=name)

    def ports(self, boundary: Boundary) -> tuple[int, int]:
        """(producer output index, consumer input index) of ``boundary``'s value."""
        return (self.subgraphs[boundary.producer].outputs.index(boundary.value),
                self.subgraphs[boundary.consumer].inputs.index(boundary.value))

    def graph(self) -> nx.DiGraph:
        """The subgraphs as a ``networkx.DiGraph``: nodes are indices (attributes ``device``,
        ``nodes``), an edge per producer/consumer pair (attribute ``values``)."""
        view = nx.DiGraph()
        for sub in self.subgraphs:
            view.add_node(sub.index, device=sub.device, nodes=sub.nodes)
        for b in self.boundaries:
            if view.has_edge(b.producer, b.consumer):
                view.edges[b.producer, b.consumer]["values"].append(b.value)
            else:
                view.add_edge(b.producer, b.consumer, values=[b.value])
        return view

    def node_graph(self) -> nx.DiGraph:
        """The model's nodes (attributes ``op_type``, ``device``, ``subgraph``), an edge where
        one reads what another makes (attribute ``values``; subgraph captures included)."""
        view = nx.DiGraph()
        made: dict[str, str] = {}
        for node in self.model.proto.graph.node:
            view.add_node(node.name, op_type=node.op_type, device=self.affinities[node.name],
                          subgraph=self._of[node.name])
            for value in dict.fromkeys(node_reads(node)):
                src = made.get(value)
                if src is None:
                    continue
                if view.has_edge(src, node.name):
                    view.edges[src, node.name]["values"].append(value)
                else:
                    view.add_edge(src, node.name, values=[value])
            made.update((o, node.name) for o in node.output if o)
        return view

    def colors(self) -> dict[str, str]:
        """A fill colour per device: chosen from the device name, so a device keeps its colour
        from drawing to drawing (unless two devices of one drawing would share one)."""
        taken: dict[str, str] = {}
        for device in sorted(self.devices):
            k = zlib.crc32(device.encode())
            for step in range(len(_PALETTE)):
                color = _PALETTE[(k + step) % len(_PALETTE)]
                if color not in taken.values():
                    break
            taken[device] = color
        return taken

    def to_dot(self) -> str:
        """Graphviz DOT text: the model's nodes filled with their device's colour, clustered by
        subgraph, each edge crossing subgraphs labelled with its value; a legend of devices."""
        colors = self.colors()
        graph = self.model.proto.graph
        view = self.node_graph()
        lines = [f"digraph {_q(graph.name or 'model')} {{",
                 '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
                 '  edge [fontname="Helvetica", fontsize=10];']
        for sub in self.subgraphs:
            lines.append(f"  subgraph cluster_{sub.index} {{")
            lines.append(f"    label={_q(f'#{sub.index} {sub.device}')}; style=dashed; "
                         f"color={_q(colors[sub.device])};")
            for name in sub.nodes:
                label = _q(name, view.nodes[name]["op_type"])
                lines.append(f"    {_q(name)} [label={label}, "
                             f"fillcolor={_q(colors[sub.device])}];")
            lines.append("  }")
        inits = {t.name for t in graph.initializer} | {t.values.name
                                                      for t in graph.sparse_initializer}
        model_inputs = [i.name for i in graph.input if i.name not in inits]
        for name in model_inputs:
            lines.append(f"  {_q('input:' + name)} [label={_q(name)}, shape=ellipse, "
                         "style=solid];")
        for node in graph.node:
            for value in dict.fromkeys(node_reads(node)):
                if value in model_inputs:
                    lines.append(f"  {_q('input:' + value)} -> {_q(node.name)};")
        for src, dst, values in view.edges(data="values"):
            if view.nodes[src]["subgraph"] == view.nodes[dst]["subgraph"]:
                lines.append(f"  {_q(src)} -> {_q(dst)};")
            else:
                lines.append(f"  {_q(src)} -> {_q(dst)} [label={_q(', '.join(values))}, "
                             "style=bold];")
        made = {o: n.name for n in graph.node for o in n.output if o}
        for out in graph.output:
            lines.append(f"  {_q('output:' + out.name)} [label={_q(out.name)}, "
                         "shape=ellipse, style=solid];")
            src = made.get(out.name)
            if src is not None:
                lines.append(f"  {_q(src)} -> {_q('output:' + out.name)};")
            elif out.name in model_inputs:
                lines.append(f"  {_q('input:' + out.name)} -> {_q('output:' + out.name)};")
        lines.append('  subgraph cluster_legend {\n    label="devices"; style=solid;')
        for device, color in colors.items():
            lines.append(f"    {_q('device:' + device)} [label={_q(device)}, "
                         f"fillcolor={_q(color)}];")
        lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def submodel(self, index: int) -> Model:
        """Subgraph ``index`` as a model of its own (see :meth:`aioinfer.Model.extract`)."""
        sub = self.subgraphs[index]
        return self.model.extract(sub.nodes, sub.inputs, sub.outputs,
                                  name=f"{self.model.name}/{sub.index}:{sub.device}")

    def __repr__(self) -> str:
        parts = ", ".join(f"#{s.index} {s.device} ({len(s.nodes)} nodes)" for s in self.subgraphs)
        return f"<Partition of {self.model.name!r}: {parts}; {len(self.boundaries)} boundaries>"


def partition(model: Model, affinities: Mapping[str, str]) -> Partition:
    """Group the top-level nodes of ``model`` into acyclic same-device subgraphs.

    ``affinities`` maps every top-level node name to a device name. Raises
    :class:`~aioinfer.errors.PartitionError` naming the node when one has no device, or when a
    name is not a node of the model. The result is deterministic: the same model and
    affinities give the same partition.
    """
    nodes = list(model.proto.graph.node)
    names = {n.name for n in nodes}
    for key in affinities:
        if key not in names:
            raise PartitionError(f"affinity given for {key!r}, which is not a node of the model",
                                 node=key)
    devices = []
    for node in nodes:
        device = affinities.get(node.name)
        if not device:
            raise PartitionError(
                f"node {node.name!r} ({node.op_type}) has no device affinity", node=node.name
            )
        devices.append(device)

    made: dict[str, int] = {}  # value -> position of the node making it
    reads: list[list[str]] = []
    for pos, node in enumerate(nodes):
        reads.append([v for v in dict.fromkeys(node_reads(node)) if v])
        made.update((o, pos) for o in node.output if o)
    for pos, node in enumerate(nodes):
        late = next((v for v in reads[pos] if made.get(v, -1) >= pos), None)
        if late is not None:
            raise PartitionError(
                f"node {node.name!r} reads {late!r} before it is made: the model's nodes are "
                "not in topological order", node=node.name, value=late,
            )

    group_of = _group(devices, reads, made)
    quotient = nx.DiGraph()
    quotient.add_nodes_from(dict.fromkeys(group_of))
    for pos in range(len(nodes)):
        for value in reads[pos]:
            if value in made and group_of[made[value]] != group_of[pos]:
                quotient.add_edge(group_of[made[value]], group_of[pos])
    if not nx.is_directed_acyclic_graph(quotient):  # pragma: no cover - _group prevents it
        raise PartitionError("the subgraphs of the partition form a cycle")
    first = {g: group_of.index(g) for g in quotient}
    order = {g: i for i, g in enumerate(
        nx.lexicographical_topological_sort(quotient, key=first.__getitem__))}
    index_of = [order[g] for g in group_of]

    graph = model.proto.graph
    model_outputs = {o.name for o in graph.output}
    # initializers are copied into each subgraph reading them (unless a node remakes the name)
    constants = {t.name for t in graph.initializer} | {t.values.name
                                                      for t in graph.sparse_initializer}
    constants -= made.keys()
    readers: dict[str, set[int]] = {}
    for pos in range(len(nodes)):
        for value in reads[pos]:
            readers.setdefault(value, set()).add(index_of[pos])
    members: list[list[int]] = [[] for _ in order]
    for pos, index in enumerate(index_of):
        members[index].append(pos)
    subgraphs = []
    for index, positions in enumerate(members):
        own = {o for p in positions for o in nodes[p].output if o}
        inputs: dict[str, None] = {}
        for p in positions:
            inputs.update((v, None) for v in reads[p] if v not in own and v not in constants)
        outputs = [o for p in positions for o in nodes[p].output if o and (
            o in model_outputs or readers.get(o, {index}) - {index})]
        subgraphs.append(Subgraph(index, devices[positions[0]],
                                  tuple(nodes[p].name for p in positions),
                                  tuple(inputs), tuple(dict.fromkeys(outputs))))
    producers = {v: index_of[p] for v, p in made.items()}
    return Partition(model, subgraphs, {n.name: d for n, d in zip(nodes, devices, strict=True)},
                     producers)


def _group(devices: list[str], reads: list[list[str]], made: Mapping[str, int]) -> list[int]:
    """Group id per node: same-device groups whose quotient graph stays acyclic."""
    group_of: list[int] = []
    group_device: list[str] = []
    by_device: dict[str, list[int]] = {}
    feeds: list[set[int]] = []  # group -> the groups it reads from (the quotient's in-edges)
    for pos, device in enumerate(devices):
        sources = list(dict.fromkeys(group_of[made[v]] for v in reads[pos] if v in made))
        blocked = _ancestors(feeds, sources)  # joining any of these would close a cycle
        mine = [g for g in sources if group_device[g] == device and g not in blocked]
        if not mine:
            mine = [g for g in by_device.get(device, ()) if g not in blocked]
        if mine:
            target = max(mine)
        else:
            target = len(group_device)
            group_device.append(device)
            by_device.setdefault(device, []).append(target)
            feeds.append(set())
        group_of.append(target)
        feeds[target].update(g for g in sources if g != target)
    return group_of


def _ancestors(feeds: list[set[int]], groups: list[int]) -> set[int]:
    """The groups from which one of ``groups`` can be reached (``groups`` not included
    unless one reaches another)."""
    seen: set[int] = set()
    stack = [f for g in groups for f in feeds[g]]
    while stack:
        g = stack.pop()
        if g not in seen:
            seen.add(g)
            stack.extend(feeds[g] - seen)
    return seen


def _q(*lines: str) -> str:
    """A DOT double-quoted string of ``lines`` (joined by DOT's ``\\n`` line break)."""
    return '"' + "\\n".join(t.replace("\\", "\\\\").replace('"', '\\"') for t in lines) + '"'
