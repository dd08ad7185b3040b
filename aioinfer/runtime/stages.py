"""Stages: one inference as a small dataflow graph of steps, each on an executor.

A plugin's request exposes its work as a list of :class:`Stage`. Each stage names its
executor, its (synchronous) function and the stages it waits for. ``after=None`` (the default)
means "after the previous stage of the list", so a plain list is a chain, as it always was;
``after=()`` makes a stage a root, and ``after=("a", "b")`` waits for both. The list must be
in a topological order (a stage only waits for stages listed before it): ``infer()`` then runs
it in list order on the calling thread, and ``infer_async()`` submits each stage as soon as its
predecessors are done, so independent stages of one request run concurrently.

The executor of a stage is anything with the small :class:`StageExecutor` protocol:

- :class:`~aioinfer.runtime.executors.Executor`: a bounded set of worker threads (one per
  device stream). A run continues inline on the same worker while the next ready stage uses
  the same executor (its ``lane``), so a chain on one device costs one hop.
- :class:`~aioinfer.runtime.streams.StreamExecutor`: a transfer on a device's sync stream; it
  resumes when the producer's notification fires and never holds a worker while waiting.
- :class:`~aioinfer.runtime.subrequest.RequestExecutor`: drives an infer request of another
  compiled model (a HETERO subgraph) and resumes from its completion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .pipeline import PipelineRun


class StageExecutor(Protocol):
    """Where a stage runs. ``lane`` identifies the threads of the executor: a run that just
    finished a stage on lane ``L`` runs the next ready stage inline when its executor's lane
    is ``L`` (``None``: never inline, always :meth:`submit`)."""

    name: str

    @property
    def lane(self) -> object | None: ...

    def submit(self, run: PipelineRun, index: int) -> None:
        """Start stage ``index`` of ``run`` (``run.execute(index, lane)`` on a worker, or a
        deferred start that later calls ``run.resume(index, error)``). Never blocks."""

    def run_inline(self, stage: Stage) -> None:
        """Run ``stage`` to its end on the calling thread (the synchronous ``infer()``)."""


@dataclass(frozen=True, eq=False)
class Stage:
    """One step of a request: ``fn`` run on ``executor`` once the stages named in ``after``
    are done (``None``: after the previous stage of the list; ``()``: a root)."""

    name: str
    executor: StageExecutor
    fn: Callable[[], Any]
    after: tuple[str, ...] | None = None


class StageGraph:
    """A request's stages with their dependencies resolved to indices (built once per
    request). ``linear`` is true for a plain chain."""

    __slots__ = ("stages", "preds", "succs", "npred", "roots", "linear", "entry")

    def __init__(self, stages: Sequence[Stage], entry: StageExecutor | None = None) -> None:
        from ..errors import RequestError

        if not stages:
            raise RequestError("a request needs at least one stage")
        index: dict[str, int] = {}
        preds: list[tuple[int, ...]] = []
        for k, stage in enumerate(stages):
            if stage.name in index:
                raise RequestError(f"two stages are named {stage.name!r}")
            if stage.after is None:
                preds.append((k - 1,) if k else ())
            else:
                try:
                    preds.append(tuple(dict.fromkeys(index[name] for name in stage.after)))
                except KeyError as exc:
                    raise RequestError(
                        f"stage {stage.name!r} waits for {exc.args[0]!r}, which is not a stage "
                        "listed before it (stages must be in a topological order)"
                    ) from None
            index[stage.name] = k
        succs: list[list[int]] = [[] for _ in stages]
        for k, before in enumerate(preds):
            for p in before:
                succs[p].append(k)
        self.stages = tuple(stages)
        self.preds = tuple(preds)
        self.succs = tuple(tuple(s) for s in succs)
        self.npred = tuple(len(p) for p in preds)
        self.roots = tuple(k for k, p in enumerate(preds) if not p)
        self.linear = all(p == ((k - 1,) if k else ()) for k, p in enumerate(preds))
        first = stages[self.roots[0]].executor
        # Where a run checks its inputs: the first stage's workers, else ``entry`` (None:
        # HOST's).
        self.entry: StageExecutor | None = first if first.lane is not None else entry

    def __len__(self) -> int:
        return len(self.stages)

    def as_networkx(self) -> Any:
        """The stages as a ``networkx.DiGraph`` (node attributes ``executor``)."""
        import networkx as nx

        graph = nx.DiGraph()
        for stage in self.stages:
            graph.add_node(stage.name, executor=stage.executor.name)
        for k, before in enumerate(self.preds):
            for p in before:
                graph.add_edge(self.stages[p].name, self.stages[k].name)
        return graph
