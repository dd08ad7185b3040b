"""The worker threads of the pipelines: decoding, postprocessing, drawing and encoding run
here, apart from the devices' executors, so the event loop only schedules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..runtime.executors import Executor

T = TypeVar("T")

WORKERS = Executor("pipelines", workers=2)
"""Two threads: a source's decoding and the sinks' work can overlap."""


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on a pipeline worker (asyncio, uvloop or trio); never abandoned."""
    return await WORKERS.run(lambda: fn(*args))
