"""Streaming inference: an async generator over an async source, with backpressure.

``compiled.stream(source)`` pulls inputs from ``source`` (an async iterable), keeps at most
``max_in_flight`` inferences running, and yields their results, in input order unless
``ordered=False``. The source is only pulled when a request is free, so a fast source is slowed
to the model's pace instead of queueing without bound.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable
from typing import TYPE_CHECKING, Any

from .infer_queue import AsyncInferQueue

if TYPE_CHECKING:
    from ..plugins.base import CompiledModel
    from .results import Results


async def stream(
    compiled: CompiledModel,
    source: AsyncIterable[Any],
    *,
    ordered: bool = True,
    max_in_flight: int = 0,
) -> AsyncGenerator[Results, None]:
    """Yield the results of ``compiled`` for each input of ``source``.

    ``max_in_flight=0`` takes ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``. Results that are ready are
    yielded before the next input is pulled; when the source ends, the rest follow. A failed
    inference raises its error (with ``.inputs``) at its place in the output. Closing the
    generator early cancels the inferences still running and closes the source.
    """
    queue = AsyncInferQueue(compiled, jobs=max_in_flight, ordered=ordered)
    inputs_iter = aiter(source)
    try:
        async for inputs in inputs_iter:
            await queue.submit(inputs)  # waits for a free request: the backpressure
            for results in queue.ready_nowait():  # before pulling (and preparing) the next
                yield results
        async for results in queue:
            yield results
    finally:
        if queue.in_flight:
            queue.cancel_all()
        aclose = getattr(inputs_iter, "aclose", None)
        if aclose is not None:
            await aclose()
