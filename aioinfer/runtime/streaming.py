"""Streaming inference: an async generator over an async source, with backpressure.

``compiled.stream(source)`` pulls inputs from ``source`` (an async iterable), keeps at most
``max_in_flight`` inputs between pulled and yielded (running, or finished and waiting for their
turn), and yields their results, in input order unless ``ordered=False``. The source is only
pulled when there is room, so a fast source is slowed to the model's pace and a slow inference
at the head of the order cannot make later results pile up.
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
        window = len(queue)
        while True:
            # Pull only when fewer than `window` inputs are not yet yielded: a slow one at the
            # head (ordered) cannot make later results pile up, and the next input is not
            # pulled (prepared) before it can start.
            while queue.outstanding >= window:
                yield await anext(queue)
            try:
                inputs = await anext(inputs_iter)
            except StopAsyncIteration:
                break
            await queue.submit(inputs)  # a request is free: outstanding < window
            for results in queue.ready_nowait():
                yield results
        async for results in queue:
            yield results
    finally:
        if queue.in_flight:
            queue.cancel_all()
        aclose = getattr(inputs_iter, "aclose", None)
        if aclose is not None:
            await aclose()
