"""The ``aioinfer demo`` and ``aioinfer pipeline`` commands: a pipeline run with a progress
bar (rich) and a summary table, or one JSON object for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..pipelines import FrameResult, PipelineStats


@dataclass
class Progress:
    """A rich progress bar on stderr fed by a pipeline's ``on_result``; nothing when
    ``enabled`` is false (``--json``, ``--no-progress``)."""

    enabled: bool = True
    description: str = "frames"
    _bar: Any = field(default=None, init=False)
    _task: Any = field(default=None, init=False)

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            MofNCompleteColumn(), TextColumn("{task.fields[fps]:>7.1f} fps"),
                            TimeElapsedColumn(), console=Console(stderr=True))
            self._bar.__enter__()
        return self

    def start(self, total: int | None) -> None:
        if self._bar is not None:
            self._task = self._bar.add_task(self.description, total=total, fps=0.0)

    def advance(self, stats: PipelineStats) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=stats.delivered, fps=stats.fps)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def summary_table(title: str, rows: list[tuple[str, str]]) -> Any:
    """A two-column rich table."""
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def stats_rows(stats: PipelineStats) -> list[tuple[str, str]]:
    lat = stats.latency_ms()
    rows = [("mode", stats.mode), ("frames", f"{stats.delivered} of {stats.pulled} taken"),
            ("throughput", f"{stats.fps:.1f} frames/s over {stats.elapsed:.2f} s"),
            ("latency", f"median {lat['median']:.2f} ms, p90 {lat['p90']:.2f} ms, "
                        f"p99 {lat['p99']:.2f} ms, max {lat['max']:.2f} ms"),
            ("dropped", str(stats.dropped)), ("in flight (max)", str(stats.max_in_flight))]
    if stats.accuracy is not None:
        rows.append(("accuracy", f"{stats.accuracy:.2%} ({stats.correct}/{stats.labelled} "
                                 "frames against the known labels)"))
    if stats.interrupted:
        rows.append(("interrupted", f"yes: {stats.abandoned} frames in flight were abandoned"))
    return rows


def run_with_progress(make: Callable[[PipelineStats, Callable[[FrameResult], None],
                                      Callable[[int | None], None]], Awaitable[Any]],
                      *, progress: bool, description: str
                      ) -> tuple[Any, PipelineStats, bool]:
    """Run ``make(stats, on_result, on_start)`` on asyncio with a progress bar; returns
    (its value or None, the stats, whether Ctrl-C stopped it)."""
    stats = PipelineStats()
    outcome: list[Any] = [None]
    with Progress(progress, description) as bar:
        async def go() -> None:
            outcome[0] = await make(stats, lambda _r: bar.advance(stats), bar.start)

        try:
            anyio.run(go)
        except KeyboardInterrupt:
            stats.interrupted = True
            return None, stats, True
    return outcome[0], stats, False


def print_result(payload: dict[str, Any], table: Any, *, as_json: bool) -> None:
    """One JSON line on stdout, or the table (rich) for people."""
    if as_json:
        print(json.dumps(payload), flush=True)
        return
    from rich.console import Console

    Console(file=sys.stdout, width=100).print(table)
