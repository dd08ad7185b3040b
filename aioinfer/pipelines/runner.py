"""``run_pipeline``: frames from a source through a compiled model into sinks.

    source --(capture task: decode on a worker, ``batch`` frames stacked)--> read-ahead
        channel (lossless) or the newest-frame slot (live) --(compiled.stream, <= N
        inferences in flight, in order)--> results --(bounded channel)--> drain task
        --(split per frame, postprocess + sinks, worker, batches)

The loop only moves frames and results. Decoding runs ahead of the model, and the drain
runs beside the stream, so neither holds up the next inferences; both channels are bounded,
so a slow sink slows the source instead of growing a queue. In ``live`` mode the capture
task keeps only the newest frame (:class:`LatestFrame`); older ones are dropped and counted.

Stopping: when the run is cancelled (Ctrl-C) or a stage fails, the stream is closed (the
inferences still running are cancelled and counted as ``abandoned``), the results already
computed are still postprocessed and written, and every sink is closed, shielded from the
cancellation, before the cancellation or error propagates.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from typing import Any

import anyio
import numpy as np
from anyio.streams.memory import MemoryObjectReceiveStream

from .frames import Frame, FrameResult
from .postprocess import Classify, Postprocess
from .sinks import Sink
from .sources import Source
from .stats import PipelineStats
from .workers import off_loop

Prepare = Callable[[np.ndarray], Any]


class LatestFrame:
    """A one-frame slot between a live source and the model: ``put`` replaces a frame not
    taken yet (counted in ``dropped``); ``take`` waits for a new frame (None once closed)."""

    def __init__(self, stats: PipelineStats | None = None) -> None:
        self._frame: Frame | None = None
        self._closed = False
        self._event = anyio.Event()
        self._stats = stats
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        if self._frame is not None:
            self.dropped += 1
            if self._stats is not None:
                self._stats.dropped = self.dropped
        self._frame = frame
        self._event.set()

    def close(self) -> None:
        self._closed = True
        self._event.set()

    async def take(self) -> Frame | None:
        while self._frame is None and not self._closed:
            await self._event.wait()
            self._event = anyio.Event()
        frame, self._frame = self._frame, None
        return frame


Batch = tuple[list[Frame], np.ndarray]
"""Frames going to one inference, with their images stacked: ``uint8 [n, H, W, 3]``."""
Delivered = tuple[list[Frame], list[np.ndarray], float]
"""One inference's frames, its outputs and the ``perf_counter`` time they came back."""


async def run_pipeline(
    compiled: Any,
    source: Source,
    *,
    sinks: Sequence[Sink] = (),
    postprocess: Postprocess | None = None,
    mode: str = "auto",
    requests: int = 0,
    batch: int = 1,
    prepare: Prepare | None = None,
    stats: PipelineStats | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
    buffer: int = 64,
    read_ahead: int = 16,
) -> PipelineStats:
    """Run ``source`` through ``compiled`` into ``sinks``; returns the run's statistics.

    ``mode``: ``"lossless"`` (every frame, in order), ``"live"`` (newest frame wins, drops
    counted) or ``"auto"`` (``source.live`` decides). ``requests``: inferences in flight
    (0: the model's ``OPTIMAL_NUMBER_OF_INFER_REQUESTS``). ``batch``: consecutive frames
    per inference in lossless mode (stacked on a worker thread; the model's first dimension
    must be dynamic and every output's first dimension the frame); live mode always infers
    the newest frame alone. On a small model most of an inference's time is fixed cost, so
    batching multiplies the throughput (the demo's digits: ``batch=8`` about 2.5x, see
    ``benchmarks/pipeline_overhead.py``). ``prepare``: turns the ``[n, H, W, 3]`` uint8
    images of an inference into the model's inputs on a worker thread; by default they go
    in as they are (the model's PrePostProcessor does the rest, in the request).
    ``postprocess`` defaults to top-5 classification. ``on_result`` is called on the loop
    thread with each delivered result (keep it cheap; a live plot reads ``stats``).
    ``read_ahead``: decoded frames a lossless source may get ahead of the model. Pass a
    ``stats`` object to read it while the run goes on, or after a cancellation.
    """
    if mode == "auto":
        mode = "live" if getattr(source, "live", False) else "lossless"
    if mode not in ("lossless", "live"):
        raise ValueError(f"mode must be 'lossless', 'live' or 'auto', got {mode!r}")
    if requests < 0:
        raise ValueError(f"requests must be >= 0, got {requests}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    stats = stats if stats is not None else PipelineStats()
    stats.mode = mode
    stats.started = time.perf_counter()
    post = postprocess or Classify(5)
    send, receive = anyio.create_memory_object_stream[Delivered](max(buffer, 1))
    submitted: deque[list[Frame]] = deque()  # handed to the model, results not delivered yet
    in_flight = 0  # frames in `submitted`
    slot = LatestFrame(stats) if mode == "live" else None
    per_inference = batch if slot is None else 1

    ahead_send, ahead = anyio.create_memory_object_stream[Batch](
        max(-(-read_ahead // per_inference), 1))

    async def batches() -> AsyncGenerator[Batch, None]:
        if slot is None:
            async with ahead:
                async for item in ahead:
                    yield item
            return
        while (latest := await slot.take()) is not None:
            yield [latest], latest.image[None]

    async def inputs() -> AsyncGenerator[Any, None]:
        nonlocal in_flight
        async with aclosing(batches()) as it:
            async for group, images in it:
                value = images if prepare is None else await off_loop(prepare, images)
                submitted.append(group)
                in_flight += len(group)
                stats.pulled += len(group)
                stats.max_in_flight = max(stats.max_in_flight, in_flight)
                yield value

    async def capture() -> None:
        """Read the source beside the inferences: decoding overlaps them. Lossless: groups
        of ``batch`` frames into a bounded channel (a full one waits); live: into the
        one-frame slot."""
        group: list[Frame] = []
        try:
            async with aclosing(source.__aiter__()) as it:
                async for frame in it:
                    if slot is not None:
                        slot.put(frame)
                        continue
                    group.append(frame)
                    if len(group) == per_inference:
                        for item in await _stacked(group):
                            await ahead_send.send(item)
                        group = []
            for item in await _stacked(group):
                await ahead_send.send(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the run stopped reading
        finally:
            ahead_send.close()
            if slot is not None:
                slot.close()

    failures: list[Exception] = []  # raised after the task group, not as a group
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain, receive, sinks, post, stats, on_result, failures)
            tg.start_soon(capture)
            try:
                async with aclosing(compiled.stream(inputs(), max_in_flight=requests)) as out:
                    async for results in out:
                        group = submitted.popleft()
                        in_flight -= len(group)
                        item = (group, results.to_list(), time.perf_counter())
                        try:
                            send.send_nowait(item)
                        except anyio.WouldBlock:  # the sinks are behind: wait for them,
                            with anyio.CancelScope(shield=True):  # never losing a result
                                await send.send(item)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                stats.interrupted = True  # the drain failed: its error is in `failures`
            except Exception as exc:
                stats.interrupted = True
                failures.insert(0, exc)
            except BaseException:
                stats.interrupted = True
                raise
            finally:
                stats.abandoned = in_flight
                send.close()
                ahead.close()
                tg.cancel_scope.cancel()  # the capture task; the drain is shielded
    finally:
        stats.finished = time.perf_counter()
    if failures:
        raise failures[0]
    return stats


async def _stacked(group: list[Frame]) -> list[Batch]:
    """``group``'s images stacked to ``[n, H, W, 3]`` on a worker (a single frame: a view,
    no copy); consecutive frames of different sizes go to separate inferences."""
    if len(group) <= 1:
        return [(group, frame.image[None]) for frame in group]

    def stack() -> list[Batch]:
        runs: list[list[Frame]] = []
        for frame in group:
            if runs and runs[-1][0].image.shape == frame.image.shape:
                runs[-1].append(frame)
            else:
                runs.append([frame])
        return [(run, np.stack([f.image for f in run])) for run in runs]

    return await off_loop(stack)


async def _drain(receive: MemoryObjectReceiveStream[Delivered], sinks: Sequence[Sink],
                 post: Postprocess, stats: PipelineStats,
                 on_result: Callable[[FrameResult], None] | None,
                 failures: list[Exception]) -> None:
    """Postprocess and write results in batches on a worker; shielded, so a cancelled run
    still writes what was computed and closes every sink. A failure is put in ``failures``
    and closes the channel (the stream then stops)."""
    with anyio.CancelScope(shield=True):
        try:
            async with receive:
                async for first in receive:
                    items = [first]
                    frames = len(first[0])
                    while frames < 32:
                        try:
                            items.append(receive.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                        frames += len(items[-1][0])
                    results = await off_loop(_write_batch, items, post, sinks)
                    for result in results:
                        stats.record(result)
                        if on_result is not None:
                            on_result(result)
        except Exception as exc:
            failures.append(exc)
        finally:
            try:
                await off_loop(_close_all, sinks)
            except Exception as exc:
                failures.append(exc)


def _write_batch(items: list[Delivered], post: Postprocess,
                 sinks: Sequence[Sink]) -> list[FrameResult]:
    out = []
    for frames, outputs, done in items:
        for k, frame in enumerate(frames):
            mine = outputs if len(frames) == 1 else [o[k:k + 1] for o in outputs]
            result = post(frame, mine, done - frame.captured)
            for sink in sinks:
                sink.write(frame, result)
            out.append(result)
    return out


def _close_all(sinks: Sequence[Sink]) -> None:
    error: BaseException | None = None
    for sink in sinks:
        try:
            sink.close()
        except BaseException as exc:  # close the others, then raise the first failure
            error = error or exc
    if error is not None:
        raise error
